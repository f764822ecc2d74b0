# REML on data sets where Fisher scoring oscillates or stops at a local maximum.
# Run from the repository root:  Rscript tests/reference/metafor_hard_cases.R
# Input: tests/reference/hard_cases_input.json (rows of the benchmark's synthetic data).
# Output: tests/reference/metafor_hard_cases.json with, per case,
#   - metafor's rma(method="REML") tau2 with tight control (or its error message), and
#   - an independent maximisation of the REML log-likelihood over tau2 >= 0 with optimize() on a
#     fine grid-bracketed interval (the value that a correct engine must reproduce).
suppressMessages({library(metafor); library(jsonlite)})
inp <- fromJSON("tests/reference/hard_cases_input.json", simplifyVector = FALSE)
reml_ll <- function(t2, yi, vi) {
  w <- 1 / (vi + t2); mu <- sum(w * yi) / sum(w)
  -0.5 * (sum(log(vi + t2)) + log(sum(w)) + sum(w * (yi - mu)^2))
}
out <- list()
for (cs in inp$cases) {
  yi <- unlist(cs$yi); vi <- unlist(cs$vi)
  fit <- try(rma(yi, vi, method = "REML", control = list(threshold = 1e-12, tol = 1e-15, maxiter = 10000)),
             silent = TRUE)
  grid <- c(0, 10^seq(-10, 0, length.out = 20001))
  ll <- sapply(grid, reml_ll, yi = yi, vi = vi)
  j <- which.max(ll)
  lo <- grid[max(1, j - 1)]; hi <- grid[min(length(grid), j + 1)]
  opt <- if (j == 1 && ll[1] >= ll[2]) list(maximum = 0) else
    optimize(reml_ll, c(lo, hi), yi = yi, vi = vi, maximum = TRUE, tol = 1e-15)
  tau2_max <- if (reml_ll(0, yi, vi) >= reml_ll(opt$maximum, yi, vi)) 0 else opt$maximum
  out[[length(out) + 1]] <- list(
    id = cs$id, yi = yi, vi = vi,
    metafor_tau2 = if (inherits(fit, "try-error")) NULL else fit$tau2,
    metafor_error = if (inherits(fit, "try-error")) trimws(as.character(fit)) else NULL,
    reml_argmax_tau2 = tau2_max,
    call = "rma(yi, vi, method='REML', control=list(threshold=1e-12, tol=1e-15, maxiter=10000)); optimize(reml_ll, ...)")
  cat(cs$id, "metafor:", if (inherits(fit, "try-error")) "error" else format(fit$tau2, digits = 10),
      "argmax:", format(tau2_max, digits = 10), "\n")
}
res <- list(R_version = R.version.string, metafor_version = as.character(packageVersion("metafor")),
            generated_by = "Rscript tests/reference/metafor_hard_cases.R", cases = out)
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, null = "null", pretty = TRUE),
           "tests/reference/metafor_hard_cases.json")
