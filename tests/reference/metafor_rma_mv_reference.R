## Reference values from metafor::rma.mv for the Python GLS engine.
##
## Run from the repository root:
##   Rscript tests/reference/metafor_rma_mv_reference.R > tests/reference/metafor_rma_mv_reference.Rout 2>&1
## Writes tests/reference/metafor_rma_mv_reference.json (see tests/reference/README.md).
##
## Data: the Gleser & Olkin (2009) multiple-treatment example (Handbook of Research
## Synthesis and Meta-Analysis, 2nd ed., ch. 19, Table 19.2): three studies, treatments
## sharing a common control group.  metafor 3.8-1 / metadat 1.2-0 ship no
## dat.gleser2009 object; the data frame below is the one typed in by metafor's own test
## file tests/testthat/test_analysis_example_gleser2009.r (and the metafor-project.org
## page analyses:gleser2009), where 'ai'/'n1i' is the common control group and
## 'ci'/'n2i' the treatment group, so yi = control - treatment (RD) or the log odds
## ratio control vs treatment (OR).

suppressPackageStartupMessages(library(metafor))

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f) == 1L) dirname(normalizePath(f)) else file.path("tests", "reference")
})
source(file.path(script_dir, "json_writer.R"))
out_path <- file.path(script_dir, "metafor_rma_mv_reference.json")

R_version <- R.version.string
metafor_version <- packageDescription("metafor")$Version
cat("R:", R_version, "\nmetafor:", metafor_version, "\n")

## nlminb (rma.mv's default optimizer) settings; passed through rma.mv's control
## rma.mv's default optimizer nlminb fails ("convergence = 1") with rel.tol <= 1e-12
## and reaches only ~1e-6 relative accuracy for sigma2 with its defaults; nlm with
## tight gradtol/steptol gave the closest agreement with rma()'s Fisher scoring on bcg
## (~1e-9 relative).  Optimisation of the log-likelihood itself cannot resolve the
## optimum much better than sqrt(machine eps); see hand_check for score-equation values.
mvctrl <- list(optimizer = "nlm", gradtol = 1e-12, steptol = 1e-14, iterlim = 10000L)

## ---------------------------------------------------------------------------
## helpers


num <- function(x) if (is.null(x) || length(x) == 0L) NA_real_ else as.numeric(x)

named_vec <- function(x, nm) { x <- as.numeric(x); names(x) <- NULL; setNames(as.list(x), nm) }

mv_result <- function(res) {
  nm <- rownames(res$beta)
  vb <- unname(res$vb)
  out <- list(
    k = res$k, p = res$p,
    coef_names = I(nm),
    coefficients = I(num(res$beta)),
    se = I(num(res$se)),
    zval = I(num(res$zval)),
    pval = I(num(res$pval)),
    ci_low = I(num(res$ci.lb)),
    ci_high = I(num(res$ci.ub)),
    vcov = vb,
    sigma2 = if (res$withS) I(num(res$sigma2)) else NULL,
    s_names = if (res$withS) I(res$s.names) else NULL,
    s_nlevels = if (res$withS) I(res$s.nlevels) else NULL,
    tau2 = if (res$withG) I(num(res$tau2)) else NULL,
    rho = if (res$withG) I(num(res$rho)) else NULL,
    struct = if (res$withG) res$struct[1] else NULL,
    QE = num(res$QE), QEdf = res$k - res$p, QEp = num(res$QEp),
    QM = num(res$QM), QMdf = I(num(res$QMdf)), QMp = num(res$QMp),
    logLik = num(logLik(res)),
    fit_stats = list(ML = res$fit.stats["ll", "ML"], REML = res$fit.stats["ll", "REML"],
                     deviance_ML = res$fit.stats["dev", "ML"], deviance_REML = res$fit.stats["dev", "REML"],
                     AIC_ML = res$fit.stats["AIC", "ML"], AIC_REML = res$fit.stats["AIC", "REML"],
                     BIC_ML = res$fit.stats["BIC", "ML"], BIC_REML = res$fit.stats["BIC", "REML"]),
    method = res$method, test = res$test, level = 100 * (1 - res$level))
  out[!vapply(out, is.null, TRUE)]
}

## REML for V + sigma2 * Z Z' (one variance component) by hand, as an
## independent check of rma.mv's optimizer: the REML score equation
##   0.5 * (y' P ZZ' P y - tr(P ZZ')) = 0,  P = M^-1 - M^-1 X (X'M^-1 X)^-1 X'M^-1,
## solved with uniroot(tol = 1e-15) (the score, unlike the log-likelihood,
## can be evaluated without losing precision near the optimum).  sigma2 = 0 when
## the score at 0 is <= 0.
hand_one_vc <- function(y, V, X, group) {
  Z <- outer(group, unique(group), "==") * 1
  ZZ <- Z %*% t(Z)
  parts <- function(s2) {
    Mi <- solve(V + s2 * ZZ)
    vb <- solve(t(X) %*% Mi %*% X)
    P <- Mi - Mi %*% X %*% vb %*% t(X) %*% Mi
    list(Mi = Mi, vb = vb, P = P, b = c(vb %*% t(X) %*% Mi %*% y))
  }
  score <- function(s2) {
    P <- parts(s2)$P
    Py <- P %*% y
    0.5 * (c(t(Py) %*% ZZ %*% Py) - sum(diag(P %*% ZZ)))
  }
  if (score(0) <= 0) {
    s2 <- 0
  } else {
    upper <- 10 * max(var(y), max(diag(V)))
    while (score(upper) > 0) upper <- upper * 10
    s2 <- uniroot(score, c(0, upper), tol = 1e-15, maxiter = 10000)$root
  }
  pa <- parts(s2)
  list(sigma2 = s2, coefficients = pa$b, se = sqrt(diag(pa$vb)), score_at_estimate = score(s2))
}

relmax <- function(a, b) max(abs(a - b) / pmax(abs(a), abs(b), 1e-300))

## ---------------------------------------------------------------------------
## Gleser & Olkin (2009) multiple-treatment studies

go_dat <- data.frame(study = c(1, 1, 2, 3, 3, 3), trt = c(1, 2, 1, 1, 2, 3),
                     ai = c(40, 40, 10, 150, 150, 150), n1i = c(1000, 1000, 200, 2000, 2000, 2000),
                     ci = c(100, 150, 15, 40, 80, 50), n2i = c(4000, 4000, 400, 1000, 1000, 1000))
go_dat$pti <- with(go_dat, ci / n2i)
go_dat$pci <- with(go_dat, ai / n1i)

measures <- list(
  RD = list(escalc = "escalc(measure='RD', ai=ai, ci=ci, n1i=n1i, n2i=n2i, data=go_dat)",
            cov = "pci*(1-pci)/n1i of the shared control group",
            calc.v = function(x) {
              v <- matrix(x$pci[1] * (1 - x$pci[1]) / x$n1i[1], nrow = nrow(x), ncol = nrow(x))
              diag(v) <- x$vi
              v
            },
            published = list(source = "Gleser & Olkin (2009), pp. 360-362 (as checked in metafor's test file)",
                             yi = I(c(0.0150, 0.0025, 0.0125, 0.0350, -0.0050, 0.0250)),
                             fe_coefficients = I(c(0.0200, 0.0043, 0.0211)),
                             fe_vcov_times_1e6 = matrix(c(24.612, 19.954, 13.323, 19.954, 28.538, 13.255, 13.323, 13.255, 69.806), 3),
                             fe_QE = 7.191)),
  OR = list(escalc = "escalc(measure='OR', ai=ai, ci=ci, n1i=n1i, n2i=n2i, data=go_dat)",
            cov = "1/(n1i*pci*(1-pci)) of the shared control group",
            calc.v = function(x) {
              v <- matrix(1 / (x$n1i[1] * x$pci[1] * (1 - x$pci[1])), nrow = nrow(x), ncol = nrow(x))
              diag(v) <- x$vi
              v
            },
            published = list(source = "Gleser & Olkin (2009), pp. 362-363 (as checked in metafor's test file)",
                             yi = I(c(0.4855, 0.0671, 0.3008, 0.6657, -0.0700, 0.4321)),
                             fe_coefficients = I(c(0.5099, 0.0044, 0.4301)),
                             fe_vcov = matrix(c(0.01412, 0.00712, 0.00425, 0.00712, 0.01178, 0.00455, 0.00425, 0.00455, 0.02703), 3),
                             fe_QE = 2.056))
)

fit_specs <- list(
  list(id = "FE_trt", call = "rma.mv(yi, V, mods = ~ factor(trt) - 1, data=dat, method='FE')",
       desc = "common-effect GLS with one coefficient per treatment (the Gleser & Olkin model; as in metafor's test file)"),
  list(id = "RE_intercept_study", call = "rma.mv(yi, V, random = ~ 1 | study, data=dat, method='REML', control=mvctrl)",
       desc = "intercept only, one random effect per study shared by all its estimates (sigma2)", hand = "intercept"),
  list(id = "RE_trt_study", call = "rma.mv(yi, V, mods = ~ factor(trt) - 1, random = ~ 1 | study, data=dat, method='REML', control=mvctrl)",
       desc = "one coefficient per treatment, one random effect per study (single sigma2)", hand = "trt"),
  list(id = "RE_trt_CS", call = "rma.mv(yi, V, mods = ~ factor(trt) - 1, random = ~ trt | study, struct='CS', data=dat, method='REML', control=mvctrl)",
       desc = "random = ~ trt | study with compound symmetry (tau2, rho); only 6 estimates in 3 studies, weakly identified - recorded as metafor reports it"),
  list(id = "RE_trt_UN", call = "rma.mv(yi, V, mods = ~ factor(trt) - 1, random = ~ trt | study, struct='UN', data=dat, method='REML', control=mvctrl)",
       desc = "random = ~ trt | study with unstructured G (3 tau2 + 3 rho) as suggested in the brief; not identifiable with 6 estimates - recorded as metafor reports it (error or warnings)")
)

cases <- list()
for (mname in names(measures)) {
  ms <- measures[[mname]]
  env <- new.env()
  env$go_dat <- go_dat
  env$mvctrl <- mvctrl
  env$calc.v <- ms$calc.v
  env$dat <- eval(parse(text = ms$escalc), envir = env)
  env$V <- bldiag(lapply(split(env$dat, env$dat$study), ms$calc.v))
  dat <- env$dat
  data_rec <- list(study = I(dat$study), trt = I(dat$trt),
                   ai = I(dat$ai), n1i = I(dat$n1i), ci = I(dat$ci), n2i = I(dat$n2i),
                   yi = I(as.numeric(dat$yi)), vi = I(as.numeric(dat$vi)), V = unname(env$V))
  for (fs in fit_specs) {
    fit <- run_captured(fs$call, env, "rma.mv")
    case <- list(id = paste0("gleser2009_", mname, "/", fs$id), dataset = paste0("gleser2009_", mname),
                 description = fs$desc,
                 data_calls = I(c(
                   "go_dat <- data.frame(study=c(1,1,2,3,3,3), trt=c(1,2,1,1,2,3), ai=c(40,40,10,150,150,150), n1i=c(1000,1000,200,2000,2000,2000), ci=c(100,150,15,40,80,50), n2i=c(4000,4000,400,1000,1000,1000)); go_dat$pci <- with(go_dat, ai/n1i)",
                   paste0("dat <- ", ms$escalc),
                   paste0("V <- bldiag(lapply(split(dat, dat$study), calc.v))   # within-study covariance = ", ms$cov, "; diag = vi"))),
                 call = fs$call,
                 control = if (grepl("control=mvctrl", fs$call)) mvctrl else NULL,
                 data = data_rec,
                 result = NULL, error = NULL, warnings = I(fit$warnings))
    if (inherits(fit$value, "captured_error")) {
      case$error <- fit$value$msg
    } else {
      res <- fit$value
      case$result <- mv_result(res)
      if (fs$id == "FE_trt") case$published <- ms$published
      if (!is.null(fs$hand)) {
        X <- if (fs$hand == "intercept") matrix(1, nrow(dat), 1) else model.matrix(~ factor(trt) - 1, data = dat)
        h <- hand_one_vc(as.numeric(dat$yi), env$V, X, dat$study)
        env$s2_hand <- h$sigma2
        fixed_call <- sub("control=mvctrl)$", "sigma2=s2_hand)", fs$call)
        ff <- run_captured(fixed_call, env, "rma.mv")
        case$hand_check <- list(
          description = "REML score equation for V + sigma2*ZZ' solved by hand in R with uniroot(tol=1e-15), independent of rma.mv's optimizer; 'result_at_hand_sigma2' is rma.mv refitted with sigma2 fixed at that value",
          sigma2 = h$sigma2, coefficients = I(h$coefficients), se = I(h$se), score_at_estimate = h$score_at_estimate,
          max_rel_diff_coefficients = relmax(h$coefficients, num(res$beta)),
          max_rel_diff_se = relmax(h$se, num(res$se)),
          abs_diff_sigma2 = abs(h$sigma2 - num(res$sigma2)),
          rel_diff_sigma2 = relmax(h$sigma2, num(res$sigma2)),
          call_at_hand_sigma2 = fixed_call,
          result_at_hand_sigma2 = if (inherits(ff$value, "captured_error")) ff$value$msg else mv_result(ff$value))
      }
    }
    cases[[length(cases) + 1L]] <- case
  }
}

## ---------------------------------------------------------------------------
## BCG: rma.mv with diagonal V and random = ~ 1 | trial equals rma(method='REML')

env <- new.env()
env$dat <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
env$mvctrl <- mvctrl
env$ctrl <- list(threshold = 1e-12, maxiter = 10000L)
call_mv <- "rma.mv(yi, vi, random = ~ 1 | trial, data=dat, method='REML', control=mvctrl)"
call_uni <- "rma(yi, vi, data=dat, method='REML', control=ctrl)"
fmv <- run_captured(call_mv, env, "rma.mv")
fun <- run_captured(call_uni, env, "rma")
rmv <- fmv$value; runi <- fun$value
pmv <- predict(rmv); puni <- predict(runi)
bcg_case <- list(
  id = "bcg/rma.mv_vs_rma.uni_REML",
  dataset = "bcg",
  data_call = "dat <- escalc(measure='RR', ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg)",
  yi = I(as.numeric(env$dat$yi)), vi = I(as.numeric(env$dat$vi)), trial = I(env$dat$trial),
  call_rma_mv = call_mv, call_rma_uni = call_uni,
  control_rma_mv = mvctrl, control_rma_uni = env$ctrl,
  warnings = I(c(fmv$warnings, fun$warnings)),
  rma_mv = c(mv_result(rmv), list(pred = num(pmv$pred), pi_low = num(pmv$pi.lb), pi_high = num(pmv$pi.ub))),
  rma_uni = list(estimate = num(runi$beta), se = num(runi$se), ci_low = num(runi$ci.lb), ci_high = num(runi$ci.ub),
                 pval = num(runi$pval), tau2 = num(runi$tau2), QE = num(runi$QE), QEp = num(runi$QEp),
                 logLik_REML = num(logLik(runi)), pi_low = num(puni$pi.lb), pi_high = num(puni$pi.ub)),
  comparison = list(
    rel_diff_estimate = relmax(num(rmv$beta), num(runi$beta)),
    rel_diff_se = relmax(num(rmv$se), num(runi$se)),
    rel_diff_sigma2_vs_tau2 = relmax(num(rmv$sigma2), num(runi$tau2)),
    rel_diff_QE = relmax(num(rmv$QE), num(runi$QE)),
    rel_diff_logLik_REML = relmax(num(logLik(rmv)), num(logLik(runi))),
    rel_diff_pi = relmax(c(num(pmv$pi.lb), num(pmv$pi.ub)), c(num(puni$pi.lb), num(puni$pi.ub)))))
bcg_case$comparison$equal_to_1e_6 <- all(unlist(bcg_case$comparison) < 1e-6)
cases[[length(cases) + 1L]] <- bcg_case

## ---------------------------------------------------------------------------
## write

out <- list(
  R_version = R_version,
  metafor_version = metafor_version,
  generated_by = "Rscript tests/reference/metafor_rma_mv_reference.R",
  control = list(rma_mv = mvctrl,
                 notes = "optimizer='nlm' instead of rma.mv's default nlminb (nlminb stops with convergence code 1 when rel.tol <= 1e-12 and is only ~1e-6 accurate with its defaults); the other entries are passed to nlm(); variance components are optimised on the log scale (sigma2) and atanh scale (rho). Because the log-likelihood is optimised directly, sigma2 is accurate to roughly 1e-9 relative; the hand_check blocks give sigma2 from the REML score equation (uniroot tol 1e-15) and the rma.mv results with sigma2 fixed at that value"),
  data_note = "metafor 3.8-1 / metadat 1.2-0 ship no dat.gleser2009; the Gleser & Olkin (2009) multiple-treatment data are typed in exactly as in metafor's tests/testthat/test_analysis_example_gleser2009.r ('ai'/'n1i' = common control group, 'ci'/'n2i' = treatment group)",
  cases = cases)
write_json_file(out, out_path)

## ---------------------------------------------------------------------------
## summary

cat("\n== summary ==\n")
cat("cases:", length(cases), "\n")
for (cs in cases) {
  if (!is.null(cs$error)) { cat("  ERROR  ", cs$id, ":", cs$error, "\n"); next }
  if (!is.null(cs$rma_mv)) {
    cat("  ", cs$id, ": sigma2 =", json_num(cs$rma_mv$sigma2), " tau2 (rma) =", json_num(cs$rma_uni$tau2),
        " max rel diffs:", paste(names(cs$comparison), sapply(cs$comparison, function(v) if (is.logical(v)) v else sprintf("%.2g", v)), sep = "=", collapse = ", "), "\n")
    next
  }
  r <- cs$result
  cat("  ", cs$id, ": coef =", paste(sprintf("%.6g", r$coefficients), collapse = ", "),
      if (!is.null(r$sigma2)) paste(" sigma2 =", paste(sprintf("%.6g", r$sigma2), collapse = ", ")) else "",
      if (!is.null(r$tau2)) paste(" tau2 =", paste(sprintf("%.6g", r$tau2), collapse = ", "), " rho =", paste(sprintf("%.6g", r$rho), collapse = ", ")) else "",
      " QE =", sprintf("%.6g", r$QE), " QM =", sprintf("%.6g", r$QM), "\n")
  if (!is.null(cs$hand_check))
    cat("      hand check: sigma2 =", json_num(cs$hand_check$sigma2), " |d sigma2| =", sprintf("%.2g", cs$hand_check$abs_diff_sigma2),
        " rel d coef =", sprintf("%.2g", cs$hand_check$max_rel_diff_coefficients),
        " rel d se =", sprintf("%.2g", cs$hand_check$max_rel_diff_se), "\n")
  if (length(cs$warnings)) cat("      warnings:", gsub("\n", " ", paste(unclass(cs$warnings), collapse = " | ")), "\n")
}
cat("wrote", out_path, "\n")
