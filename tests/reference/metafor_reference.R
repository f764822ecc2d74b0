## Reference values from R's metafor for the Python `meta` engine.
##
## Run from the repository root:
##   Rscript tests/reference/metafor_reference.R > tests/reference/metafor_reference.Rout 2>&1
## Writes tests/reference/metafor_reference.json (see tests/reference/README.md).

suppressPackageStartupMessages(library(metafor))

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f) == 1L) dirname(normalizePath(f)) else file.path("tests", "reference")
})
source(file.path(script_dir, "json_writer.R"))
out_path <- file.path(script_dir, "metafor_reference.json")

set.seed(20261123)

R_version <- R.version.string
metafor_version <- packageDescription("metafor")$Version   # "3.8-1"
cat("R:", R_version, "\nmetafor:", metafor_version, "\n")

## ---------------------------------------------------------------------------
## settings

methods <- c("DL", "HE", "SJ", "HS", "ML", "REML", "PM", "EB", "FE")
iterative_methods <- c("ML", "REML", "PM", "EB")   # SJ and HS are closed form in metafor
tests_full <- c("z", "knha", "adhoc")
tests_edge <- c("z", "knha")
level <- 95

## control for iterative estimators (absolute tolerances on the tau^2 scale):
##   threshold: Fisher scoring (ML/REML/EB) stops when |tau2_new - tau2_old| < threshold
##   tol:       uniroot() tolerance for PM; also used by the ML/REML 'll0check'
##   maxiter:   Fisher scoring iterations / uniroot iterations
base_ctrl <- list(threshold = 1e-12, tol = 1e-15, maxiter = 10000L)
## control for confint() (Q-profile root finding via uniroot)
base_cictrl <- list(tol = 1e-15, maxiter = 10000L)

## metafor's tolerances are absolute, so for data scaled by a factor c
## (yi * c, vi * c^2) the tolerances are scaled by c^2 as well.
scale_ctrl <- function(ctrl, s) {
  ctrl$threshold <- if (!is.null(ctrl$threshold)) ctrl$threshold * s
  ctrl$tol <- ctrl$tol * s
  ctrl[!vapply(ctrl, is.null, TRUE)]
}

## ---------------------------------------------------------------------------
## datasets

datasets <- list()
add_ds <- function(id, yi, vi, tests, var_scale = 1, note = NULL, source = NULL) {
  datasets[[length(datasets) + 1L]] <<- list(
    id = id, yi = as.numeric(yi), vi = as.numeric(vi), tests = tests,
    ctrl = if (var_scale == 1) base_ctrl else scale_ctrl(base_ctrl, var_scale),
    cictrl = if (var_scale == 1) base_cictrl else scale_ctrl(base_cictrl, var_scale),
    var_scale = var_scale, note = note, source = source)
}

bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
add_ds("bcg", bcg$yi, bcg$vi, tests_full,
       source = "escalc(measure='RR', ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg)")

normand <- escalc(measure = "MD", m1i = m1i, sd1i = sd1i, n1i = n1i,
                  m2i = m2i, sd2i = sd2i, n2i = n2i, data = dat.normand1999)
add_ds("normand1999", normand$yi, normand$vi, tests_full,
       source = "escalc(measure='MD', m1i=m1i, sd1i=sd1i, n1i=n1i, m2i=m2i, sd2i=sd2i, n2i=n2i, data=dat.normand1999)")

add_ds("raudenbush1985", dat.raudenbush1985$yi, dat.raudenbush1985$vi, tests_full,
       source = "dat.raudenbush1985$yi, dat.raudenbush1985$vi")

## synthetic 'municipal-effect' sets (proportions, 0-1 scale; not rescaled)
for (k in 2:6) {
  for (tau in c(0, 0.02, 0.04, 0.06)) {
    for (r in 1:3) {
      sei <- runif(k, 0.02, 0.07)
      yi <- rnorm(k, mean = -0.03, sd = sqrt(tau^2 + sei^2))
      add_ds(sprintf("synth_k%d_tau%s_r%d", k, format(tau), r), yi, sei^2, tests_full,
             source = sprintf("set.seed(20261123) once; loop k in 2:6, tau in c(0,0.02,0.04,0.06), r in 1:3: sei <- runif(k, 0.02, 0.07); yi <- rnorm(k, mean=-0.03, sd=sqrt(tau^2+sei^2)); vi <- sei^2  (this set: k=%d, tau=%s, r=%d)", k, format(tau), r))
    }
  }
}

## edge sets (tests z and knha only)
add_ds("edge_identical_yi", rep(0.1, 4), c(0.01, 0.02, 0.015, 0.03), tests_edge,
       source = "yi = rep(0.1, 4); vi = c(0.01, 0.02, 0.015, 0.03)")
add_ds("edge_tiny_vi", c(0.2, -0.1, 0.35, 0.05), c(0.04, 0.04, 0.04, 0.04e-6), tests_edge,
       source = "yi = c(0.2, -0.1, 0.35, 0.05); vi = c(0.04, 0.04, 0.04, 0.04e-6) (last vi 1e6 times smaller)")
add_ds("edge_Q_lt_df", c(0.10, 0.11, 0.09, 0.105, 0.095), c(0.04, 0.05, 0.03, 0.06, 0.045), tests_edge,
       source = "yi = c(0.10, 0.11, 0.09, 0.105, 0.095); vi = c(0.04, 0.05, 0.03, 0.06, 0.045)")
add_ds("edge_bcg_scaled_1e-8", bcg$yi * 1e-8, bcg$vi * 1e-16, tests_edge, var_scale = 1e-16,
       note = "bcg log risk ratios scaled: yi*1e-8, vi*1e-16; metafor's absolute tolerances (threshold, tol) scaled by 1e-16 accordingly",
       source = "bcg yi * 1e-8, bcg vi * 1e-16")
add_ds("edge_bcg_scaled_1e6", bcg$yi * 1e6, bcg$vi * 1e12, tests_edge, var_scale = 1e12,
       note = "bcg log risk ratios scaled: yi*1e6, vi*1e12; metafor's absolute tolerances (threshold, tol) scaled by 1e12 accordingly",
       source = "bcg yi * 1e6, bcg vi * 1e12")

## ---------------------------------------------------------------------------
## one case

result_keys <- c("k", "estimate", "se", "ci_low", "ci_high", "pval", "tau2",
                  "tau2_ci_low", "tau2_ci_high", "I2", "I2_ci_low", "I2_ci_high",
                  "H2", "H2_ci_low", "H2_ci_high", "Q", "Q_p", "pi_low", "pi_high",
                  "tau2_se", "s2", "converged", "iterations")

s2_formula <- function(vi) {
  wi <- 1 / vi
  k <- length(vi)
  (k - 1) * sum(wi) / (sum(wi)^2 - sum(wi^2))
}


num <- function(x) if (is.null(x) || length(x) == 0L) NA_real_ else as.numeric(x)[1]

count_iterations <- function(env, call_str, method) {
  ## refit with verbose=TRUE only to count iterations (same numerics)
  vcall <- sub(")$", ", verbose=TRUE)", call_str)
  out <- tryCatch(suppressWarnings(capture.output(eval(parse(text = vcall), envir = env))),
                  error = function(e) character(0))
  if (method %in% c("ML", "REML", "EB")) {
    m <- regmatches(out, regexpr("converged after [0-9]+ iterations", out))
    if (length(m)) return(list(n = as.integer(gsub("[^0-9]", "", m[1])), kind = "fisher_scoring_iterations"))
    return(list(n = NA_integer_, kind = "fisher_scoring_iterations"))
  }
  if (method == "PM") {
    return(list(n = sum(grepl("^tau2 =", trimws(out))), kind = "uniroot_function_evaluations"))
  }
  list(n = NA_integer_, kind = NA_character_)
}

fit_case <- function(ds, method, test) {
  env <- new.env()
  env$dat <- data.frame(yi = ds$yi, vi = ds$vi)
  iterative <- method %in% iterative_methods
  is_fe <- method %in% c("FE", "EE", "CE")
  if (iterative) env$ctrl <- ds$ctrl
  env$cictrl <- ds$cictrl
  call_str <- if (iterative) {
    sprintf("rma(yi, vi, data=dat, method='%s', test='%s', control=ctrl)", method, test)
  } else {
    sprintf("rma(yi, vi, data=dat, method='%s', test='%s')", method, test)
  }
  confint_call <- if (is_fe) NA_character_ else "confint(res, control=cictrl)"
  predict_call <- "predict(res)"

  case <- list(
    id = paste(ds$id, method, test, sep = "/"),
    dataset = ds$id,
    yi = I(ds$yi), vi = I(ds$vi),
    method = method, test = test, level = level,
    call = call_str,
    confint_call = confint_call,
    predict_call = predict_call,
    control = if (iterative) ds$ctrl else NULL,
    confint_control = if (is_fe) NULL else ds$cictrl,
    result = NULL, error = NULL, warnings = character(0), note = ds$note,
    confint_info = NULL, nonfinite = NULL, iterations_kind = NULL, knha_s2w = NULL)

  fit <- run_captured(call_str, env, "rma")
  case$warnings <- c(case$warnings, fit$warnings)
  if (inherits(fit$value, "captured_error")) {
    case$error <- fit$value$msg
    case$warnings <- I(case$warnings)
    return(case)
  }
  res <- fit$value
  env$res <- res

  pr <- run_captured(predict_call, env, "predict")
  case$warnings <- c(case$warnings, pr$warnings)
  pi_low <- pi_high <- NA_real_
  if (!inherits(pr$value, "captured_error")) {
    p <- pr$value
    if (!is.null(p$pi.lb)) { pi_low <- num(p$pi.lb); pi_high <- num(p$pi.ub) }
    else { pi_low <- num(p$ci.lb); pi_high <- num(p$ci.ub) }   # FE: predict() drops pi.lb; PI = CI
  } else {
    case$warnings <- c(case$warnings, pr$value$msg)
  }

  tau2_ci <- I2_ci <- H2_ci <- c(NA_real_, NA_real_)
  if (!is_fe) {
    ci <- run_captured(confint_call, env, "confint")
    if (inherits(ci$value, "captured_error")) {
      case$warnings <- c(case$warnings, ci$value$msg)
    } else if (length(ci$warnings)) {
      case$warnings <- c(case$warnings, ci$warnings)   # bounds set to null
    } else {
      truncated <- NULL
      if (ci$value$lb.sign == ">" || ci$value$ub.sign == ">") {
        ## A Q-profile bound lies beyond confint's default search limit
        ## tau2.max = max(100, 10*tau2) and metafor returns tau2.max itself
        ## (flagged with sign '>').  The Q-profile CI does not depend on the
        ## estimator, so widen the search interval and redo it.
        tmax <- max(100, 10 * res$tau2)
        truncated <- list(call = confint_call, tau2_max = tmax,
                          tau2_ci_low = unname(ci$value$random["tau^2", "ci.lb"]),
                          tau2_ci_high = unname(ci$value$random["tau^2", "ci.ub"]),
                          lb_sign = ci$value$lb.sign, ub_sign = ci$value$ub.sign)
        for (attempt in 1:5) {
          tmax <- tmax * 100
          env$cictrl2 <- c(ds$cictrl, list(tau2.max = tmax))
          confint_call <- "confint(res, control=cictrl2)"
          ci <- run_captured(confint_call, env, "confint")
          if (inherits(ci$value, "captured_error") || length(ci$warnings) ||
              (ci$value$lb.sign != ">" && ci$value$ub.sign != ">")) break
        }
        case$confint_call <- confint_call
        case$confint_control <- env$cictrl2
        case$note <- paste(c(case$note, sprintf(
          "confint with the default search limit tau2.max=max(100, 10*tau2)=%s returned that limit as the upper bound (ub_sign '>'); the tau^2/I^2/H^2 CIs recorded are from the rerun with tau2.max=%s (see confint_call, confint_control, confint_info$default_truncated)",
          json_num(truncated$tau2_max), json_num(tmax))), collapse = "; ")
      }
      if (inherits(ci$value, "captured_error")) {
        case$warnings <- c(case$warnings, ci$value$msg)
      } else if (length(ci$warnings)) {
        case$warnings <- c(case$warnings, ci$warnings)
      } else {
        rnd <- ci$value$random
        tau2_ci <- unname(rnd["tau^2", c("ci.lb", "ci.ub")])
        I2_ci <- unname(rnd["I^2(%)", c("ci.lb", "ci.ub")])
        H2_ci <- unname(rnd["H^2", c("ci.lb", "ci.ub")])
        case$confint_info <- list(ci_null = ci$value$ci.null,
                                  lb_sign = ci$value$lb.sign, ub_sign = ci$value$ub.sign,
                                  default_truncated = truncated)
      }
    }
  }

  it <- if (iterative) count_iterations(env, call_str, method) else list(n = NA_integer_, kind = NA_character_)

  result <- list(
    k = res$k,
    estimate = num(res$b), se = num(res$se),
    ci_low = num(res$ci.lb), ci_high = num(res$ci.ub), pval = num(res$pval),
    tau2 = num(res$tau2),
    tau2_ci_low = tau2_ci[1], tau2_ci_high = tau2_ci[2],
    I2 = num(res$I2), I2_ci_low = I2_ci[1], I2_ci_high = I2_ci[2],
    H2 = num(res$H2), H2_ci_low = H2_ci[1], H2_ci_high = H2_ci[2],
    Q = num(res$QE), Q_p = num(res$QEp),
    pi_low = pi_low, pi_high = pi_high,
    tau2_se = num(res$se.tau2),
    s2 = num(res$vt),
    converged = TRUE,    # rma() stops with an error when an iterative estimator fails to converge
    iterations = it$n)
  stopifnot(identical(names(result), result_keys))
  case$result <- result
  case$iterations_kind <- it$kind
  case$knha_s2w <- num(res$s2w)   # metafor's scale factor for knha/adhoc (1 for z)
  nf <- names(result)[vapply(result, function(v) is.numeric(v) && !is.na(v) && !is.finite(v), TRUE)]
  nan <- names(result)[vapply(result, function(v) is.numeric(v) && is.nan(v), TRUE)]
  if (length(nf) || length(nan)) {
    case$nonfinite <- c(setNames(lapply(nf, function(n) as.character(result[[n]])), nf),
                        setNames(lapply(nan, function(n) "NaN"), nan))
  }
  case$warnings <- I(case$warnings)
  case
}

## ---------------------------------------------------------------------------
## run

cases <- list()
for (ds in datasets) {
  for (m in methods) {
    for (t in ds$tests) {
      cases[[length(cases) + 1L]] <- fit_case(ds, m, t)
    }
  }
}

## ---------------------------------------------------------------------------
## self-checks (printed only)

cat("\n== self-checks ==\n")
rel <- function(a, b) ifelse(a == b, 0, abs(a - b) / pmax(abs(a), abs(b), 1e-300))

## s2 equals (k-1)*sum(w)/(sum(w)^2 - sum(w^2))
s2d <- vapply(cases, function(cs) if (is.null(cs$result)) 0 else
  rel(cs$result$s2, s2_formula(cs$vi)), 0)
cat(sprintf("max rel diff res$vt vs s2 formula: %.3g\n", max(s2d)))

## knha / adhoc recomputed by hand from tau2
hand <- function(cs) {
  r <- cs$result; y <- cs$yi; v <- cs$vi; k <- length(y)
  tau2 <- if (cs$method == "FE") 0 else r$tau2
  w <- 1 / (v + tau2); mu <- sum(w * y) / sum(w); se_z <- sqrt(1 / sum(w))
  q <- sum(w * (y - mu)^2) / (k - 1)
  if (cs$test == "knha") s2 <- if (q * (k - 1) <= .Machine$double.eps) 0 else q
  if (cs$test == "adhoc") s2 <- max(1, q)
  if (cs$test == "z") { s2 <- 1; crit <- qnorm(0.975) } else crit <- qt(0.975, k - 1)
  se <- se_z * sqrt(s2)
  pv <- if (cs$test == "z") 2 * pnorm(abs(mu / se), lower.tail = FALSE) else 2 * pt(abs(mu / se), k - 1, lower.tail = FALSE)
  pis <- if (cs$method == "FE") se else sqrt(se^2 + tau2)
  c(estimate = mu, se = se, ci_low = mu - crit * se, ci_high = mu + crit * se, pval = pv,
    pi_low = mu - crit * pis, pi_high = mu + crit * pis)
}
for (tt in tests_full) {
  d <- 0
  for (cs in cases) {
    if (cs$test != tt || is.null(cs$result) || cs$result$se == 0) next
    h <- hand(cs)
    got <- unlist(cs$result[names(h)])
    d <- max(d, max(abs(got - h) / pmax(abs(h), 1e-8)))
  }
  cat(sprintf("test=%-5s max rel diff native vs hand formula (estimate, se, ci, pval, pi): %.3g\n", tt, d))
}

## the Q-profile tau^2 CI depends only on (yi, vi): same for all RE methods of a dataset
spread <- 0
for (ds in datasets) {
  b <- do.call(rbind, lapply(Filter(function(cs) cs$dataset == ds$id && !is.null(cs$result) &&
                                     !is.na(cs$result$tau2_ci_low), cases),
                             function(cs) c(cs$result$tau2_ci_low, cs$result$tau2_ci_high)))
  if (is.null(b)) next
  for (j in 1:2) spread <- max(spread, (max(b[, j]) - min(b[, j])) / max(abs(b[, j]), 1e-300))
}
cat(sprintf("max rel spread of Q-profile tau2 CI bounds across methods within a dataset: %.3g\n", spread))

## PM/EB estimating equation residual: Q_gen(tau2) - (k-1) when tau2 > 0
qgen <- function(y, v, tau2) { w <- 1 / (v + tau2); mu <- sum(w * y) / sum(w); sum(w * (y - mu)^2) }
pmres <- 0
for (cs in cases) {
  if (!cs$method %in% c("PM", "EB") || is.null(cs$result) || cs$result$tau2 <= 0) next
  pmres <- max(pmres, abs(qgen(cs$yi, cs$vi, cs$result$tau2) - (length(cs$yi) - 1)) / (length(cs$yi) - 1))
}
cat(sprintf("PM/EB max |Q_gen(tau2)-(k-1)|/(k-1) at the estimate (tau2>0): %.3g\n", pmres))

## ML/REML score at the estimate.  Interior optimum (score at tau2=0 positive):
## relative Newton step |score/info|/tau2.  Boundary optimum: the tau2 reported
## (metafor's step-halving approaches 0 without reaching it exactly).
score_info <- function(y, v, tau2, method) {
  w <- 1 / (v + tau2); P <- diag(w, length(w)) - outer(w, w) / sum(w); Py <- c(P %*% y)
  if (method == "REML") c(0.5 * (sum(Py^2) - sum(diag(P))), 0.5 * sum(P * P))
  else c(0.5 * (sum(Py^2) - sum(w)), 0.5 * sum(w^2))
}
for (m in c("ML", "REML")) {
  interior <- 0; boundary <- 0; nb <- 0
  for (cs in cases) {
    if (cs$method != m || cs$test != "z" || is.null(cs$result)) next
    if (score_info(cs$yi, cs$vi, 0, m)[1] > 0) {
      si <- score_info(cs$yi, cs$vi, cs$result$tau2, m)
      interior <- max(interior, abs(si[1] / si[2]) / cs$result$tau2)
    } else {
      nb <- nb + 1; boundary <- max(boundary, cs$result$tau2)
    }
  }
  cat(sprintf("%-4s interior optima: max |score/info|/tau2 = %.3g; boundary optima (%d datasets): max reported tau2 = %.3g\n",
              m, interior, nb, boundary))
}

## ---------------------------------------------------------------------------
## write JSON

out <- list(
  R_version = R_version,
  metafor_version = metafor_version,
  generated_by = "Rscript tests/reference/metafor_reference.R",
  control = list(
    rma = base_ctrl,
    rma_control_applies_to = I(iterative_methods),
    confint = base_cictrl,
    scaled_datasets = "for edge_bcg_scaled_1e-8 / edge_bcg_scaled_1e6 the threshold and tol values (absolute, on the tau^2 scale) are multiplied by 1e-16 / 1e12; the per-case 'control' and 'confint_control' fields give the exact lists passed",
    notes = "threshold: Fisher scoring convergence |delta tau2| (ML, REML, EB); tol: uniroot tolerance for PM (also used by metafor's ML/REML ll0check); confint tol: uniroot tolerance of the Q-profile bounds. DL, HE, SJ, HS and FE are closed form in metafor (SJ is the one-step Sidik-Jonkman estimator; SJIT would be iterative) and are fitted without a control argument."),
  adhoc = paste0("native: metafor ", metafor_version, " supports test='adhoc' (knha with the scale factor truncated below at 1); cross-checked against a hand computation in the script"),
  cases = cases)

write_json_file(out, out_path)

## ---------------------------------------------------------------------------
## summary

n_err <- sum(vapply(cases, function(cs) !is.null(cs$error), TRUE))
n_warn <- sum(vapply(cases, function(cs) length(cs$warnings) > 0, TRUE))
cat("\n== summary ==\n")
cat("datasets:", length(datasets), "\n")
cat("cases:", length(cases), "\n")
cat("cases with error:", n_err, "\n")
for (cs in cases) if (!is.null(cs$error)) cat("  ERROR", cs$id, ":", cs$error, "\n")
cat("cases with warnings:", n_warn, "\n")
allw <- unlist(lapply(cases, function(cs) unclass(cs$warnings)))
if (length(allw)) {
  tab <- sort(table(gsub("\n", " ", allw)), decreasing = TRUE)
  for (i in seq_along(tab)) cat(sprintf("  %4d x %s\n", tab[[i]], names(tab)[i]))
}
cat("warnings other than the FE+knha notice:\n")
for (cs in cases) {
  w <- unclass(cs$warnings)
  w <- w[!grepl("Knapp & Hartung method is not meant", w)]
  if (length(w)) cat("  ", cs$id, ":", gsub("\n", " ", paste(w, collapse = " | ")), "\n")
}
nf <- Filter(function(cs) !is.null(cs$nonfinite), cases)
cat("cases with non-finite result values:", length(nf), "\n")
for (cs in nf) cat("  ", cs$id, ":", paste(names(cs$nonfinite), unlist(cs$nonfinite), sep = "=", collapse = ", "), "\n")
tr <- Filter(function(cs) !is.null(cs$confint_info$default_truncated), cases)
cat("cases whose default confint hit tau2.max (rerun with a wider search interval):", length(tr), "\n")
for (cs in tr) cat("  ", cs$id, ": default ub", json_num(cs$confint_info$default_truncated$tau2_ci_high),
                   "-> rerun", json_num(cs$result$tau2_ci_high), "\n")
cat("wrote", out_path, "\n")
