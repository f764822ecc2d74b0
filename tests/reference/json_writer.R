## Minimal JSON writer with full double precision (shared by the reference scripts).
##
## jsonlite (1.8.4, the Debian bookworm version) caps numbers at 15 significant
## digits even with digits = NA or digits = I(17), which is not enough for
## round-tripping doubles.  This writer prints every double with the shortest of
## %.15g / %.16g / %.17g that parses back to exactly the same double.
##
## Conventions:
##   NULL, NA, NaN, Inf, -Inf          -> null  (callers record non-finite values separately)
##   length-1 atomic vector            -> scalar (unless wrapped in I(), then a 1-element array)
##   longer atomic vector              -> array
##   matrix                            -> array of row arrays
##   named list                        -> object (in the order given)
##   unnamed list                      -> array

json_num <- function(x) {
  if (is.na(x) || !is.finite(x)) return("null")
  for (d in 15:17) {
    s <- sprintf(paste0("%.", d, "g"), x)
    if (as.numeric(s) == x) return(s)
  }
  s
}

json_str <- function(x) {
  if (is.na(x)) return("null")
  x <- enc2utf8(x)
  x <- gsub("\\", "\\\\", x, fixed = TRUE)
  x <- gsub("\"", "\\\"", x, fixed = TRUE)
  x <- gsub("\n", "\\n", x, fixed = TRUE)
  x <- gsub("\r", "\\r", x, fixed = TRUE)
  x <- gsub("\t", "\\t", x, fixed = TRUE)
  x <- gsub("[\001-\037]", " ", x)
  paste0("\"", x, "\"")
}

json_atom <- function(v) {
  if (is.logical(v)) return(ifelse(is.na(v), "null", ifelse(v, "true", "false")))
  if (is.numeric(v)) return(vapply(as.numeric(v), json_num, ""))
  if (is.factor(v)) v <- as.character(v)
  if (is.character(v)) return(vapply(v, json_str, "", USE.NAMES = FALSE))
  stop("unsupported atomic type: ", class(v)[1])
}

to_json <- function(x, indent = 0L, step = 1L) {
  pad  <- strrep(" ", indent)
  pad2 <- strrep(" ", indent + step)
  if (is.null(x)) return("null")
  if (is.matrix(x)) {
    rows <- lapply(seq_len(nrow(x)), function(i) I(unname(x[i, ])))
    return(to_json(rows, indent, step))
  }
  if (is.list(x)) {
    if (length(x) == 0L) return(if (is.null(names(x))) "[]" else "{}")
    nm <- names(x)
    parts <- vapply(seq_along(x), function(i) to_json(x[[i]], indent + step, step), "")
    if (!is.null(nm) && all(nzchar(nm))) {
      body <- paste0(pad2, vapply(nm, json_str, ""), ": ", parts)
      return(paste0("{\n", paste(body, collapse = ",\n"), "\n", pad, "}"))
    }
    return(paste0("[\n", paste0(pad2, parts, collapse = ",\n"), "\n", pad, "]"))
  }
  asis <- inherits(x, "AsIs")
  v <- unclass(x)
  attributes(v) <- NULL
  if (length(v) == 1L && !asis) return(json_atom(v))
  paste0("[", paste(json_atom(v), collapse = ", "), "]")
}

write_json_file <- function(x, path) {
  con <- file(path, open = "w", encoding = "UTF-8")
  on.exit(close(con))
  writeLines(to_json(x), con, useBytes = FALSE)
}

## evaluate `expr_str` in `env`, collecting warnings (muffled) and errors (shared by the reference scripts)
run_captured <- function(expr_str, env, tag) {
  warns <- character(0)
  val <- tryCatch(
    withCallingHandlers(eval(parse(text = expr_str), envir = env),
      warning = function(w) {
        warns <<- c(warns, paste0(tag, ": ", conditionMessage(w)))
        invokeRestart("muffleWarning")
      }),
    error = function(e) structure(list(msg = paste0(tag, ": ", conditionMessage(e))), class = "captured_error"))
  list(value = val, warnings = warns)
}
