"""The figure workers of ``meta run`` (issue 15): the forest plots are drawn while the sensitivity analysis runs, and
a worker never outlives the run, hides an error, or swallows a warning. SYNTHETIC inputs, one outcome and horizon."""
import os
import time
import warnings

import pytest

from meta import cli
from meta.analyses import pipeline
from meta.analyses import sensitivity as sa
from meta.plan import load_plan
from meta.present import workers
from meta.present.figures import FigureJob
from meta.write import outputs
from tests.benchmarks.synthetic_scale import make_scaled_inputs

pytestmark = pytest.mark.skipif(not workers.can_fork(), reason="worker processes are forked (POSIX only)")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A SYNTHETIC inputs folder: 3 municipalities, one outcome at one horizon."""
    return make_scaled_inputs(tmp_path_factory.mktemp("small") / "inputs", 3, outcomes=["income_gt70_wml"],
                              horizons=[16])


def _forest_pngs(parent) -> list[str]:
    return sorted(p.name for p in parent.glob(".outputs.tmp-*/figures/forest_*.png"))


def test_meta_run_draws_the_forest_plots_while_the_sensitivity_analysis_runs(small, tmp_path, monkeypatch):
    out, seen = tmp_path / "outputs", []
    real = sa.sensitivity_table

    def sensitivity_waiting_for_a_forest_plot(results):  # the step, held until a worker has drawn a forest plot
        deadline = time.monotonic() + 30
        while not _forest_pngs(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        seen.append(_forest_pngs(tmp_path))
        return real(results)

    monkeypatch.setattr(sa, "sensitivity_table", sensitivity_waiting_for_a_forest_plot)
    status = cli.main(["run", "--inputs", str(small), "--plan", str(small / "plan.toml"), "--out", str(out),
                       "--jobs", "2"])
    assert status == 0
    assert seen and seen[0], "no forest plot was drawn before the sensitivity analysis ended"
    assert (out / "figures" / seen[0][0]).is_file() and (out / "report.html").is_file()


@pytest.mark.parametrize("stop", [RuntimeError, KeyboardInterrupt], ids=["error", "ctrl-c"])
def test_an_error_or_ctrl_c_while_figure_workers_draw_stops_them_and_leaves_no_temporary_folder(small, tmp_path, stop):
    results = pipeline.analyse(small, load_plan(small / "plan.toml"), sensitivity=False)
    out = tmp_path / "outputs"
    with pytest.raises(stop):
        with outputs.writing(results, out, None, draw=True, jobs=2) as writer:
            procs = [p for crew in writer.drawing.crews for p in crew.procs]
            assert procs and all(p.is_alive() for p in procs)  # started before the run is complete
            raise stop("stop")
    for proc in procs:  # ended and reaped: no orphan
        assert proc.exitcode is not None
        with pytest.raises(ProcessLookupError):
            os.kill(proc.pid, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "a temporary or half-written folder was left"


def test_an_error_in_a_figure_worker_is_raised_in_the_run(tmp_path):
    crew = workers.Crew([FigureJob("x", "no such kind", "t", {"png": "x.png"})], tmp_path, 1)
    with pytest.raises(KeyError, match="no such kind"):
        crew.join()


def test_a_figure_worker_says_its_warnings_on_stderr_while_the_run_records_its_own(tmp_path, monkeypatch, capfd):
    def warn(job, folder):
        warnings.warn("SYNTHETIC warning from a worker")

    monkeypatch.setattr(workers, "render", warn)  # inherited by the forked worker
    with warnings.catch_warnings(record=True) as caught:  # as meta run records the analysis's warnings
        warnings.simplefilter("always")
        workers.Crew([FigureJob("x", "forest", "t", {"png": "x.png"})], tmp_path, 1).join()
    assert caught == []
    assert "SYNTHETIC warning from a worker" in capfd.readouterr().err


def test_meta_run_imports_matplotlib_and_makes_the_forest_plots_only_in_the_figure_workers(small, tmp_path,
                                                                                          monkeypatch):
    from meta.present import plots

    calls = tmp_path / "calls"

    def recorded(real):
        def call(*args, **kwargs):
            with open(calls, "a") as f:
                f.write(f"{real.__name__} {os.getpid()}\n")
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(workers, "warm", recorded(workers.warm))  # inherited by the forked workers
    monkeypatch.setattr(plots, "forest_jobs", recorded(plots.forest_jobs))
    out = tmp_path / "outputs"
    status = cli.main(["run", "--inputs", str(small), "--plan", str(small / "plan.toml"), "--out", str(out),
                       "--jobs", "2"])
    assert status == 0 and (out / "figures" / "forest_income_gt70_wml_m16.png").is_file()
    said = [line.split() for line in calls.read_text().splitlines()]
    assert {name for name, _ in said} == {"warm", "forest_jobs"}
    assert all(int(pid) != os.getpid() for _, pid in said), "the main process imported matplotlib or made jobs"


def test_stopping_the_run_ends_and_reaps_the_follower_the_first_worker_forked(small, tmp_path, monkeypatch):
    results = pipeline.analyse(small, load_plan(small / "plan.toml"), sensitivity=False)
    pids, real = tmp_path / "pids", workers._follow

    def follow(*args):  # the follower says its pid, then draws slowly
        with open(pids, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(30)
        real(*args)

    monkeypatch.setattr(workers, "_follow", follow)
    with pytest.raises(KeyboardInterrupt):
        with outputs.writing(results, tmp_path / "outputs", None, draw=True, jobs=2):
            deadline = time.monotonic() + 30
            while not pids.is_file() and time.monotonic() < deadline:
                time.sleep(0.05)
            raise KeyboardInterrupt
    followers = [int(p) for p in pids.read_text().split()]
    assert followers
    for pid in followers:  # ended and reaped by the first worker before it died
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pids"], "a temporary or half-written folder was left"


def test_workers_take_the_slowest_kinds_of_figure_first_then_the_biggest_payloads():
    """The overview (~0.4 s) used to be drawn last, alone, while the other worker waited: its payload is smaller
    than a forest plot's title and rows."""
    forest = FigureJob("forest_a", "forest", "t", {"png": "a.png"}, {"rows": list(range(8)), "title": "x" * 40}, {})
    small_forest = FigureJob("forest_b", "forest", "t", {"png": "b.png"}, {"rows": [1, 2]}, {})
    overview = FigureJob("overview", "overview", "t", {"png": "o.png"}, {"rows": list(range(12))}, {})
    curve = FigureJob("specification_curve_x", "spec_curve", "t", {"png": "s.png"}, {"rows": [1]}, {})
    components = FigureJob("components", "components", "t", {"png": "c.png"}, {"rows": [1]}, {})
    order = [j.name for j in workers.slowest_first([small_forest, forest, curve, overview, components])]
    assert order == ["overview", "components", "specification_curve_x", "forest_a", "forest_b"]


def _drawn_in_order(monkeypatch, tmp_path):
    """Make the forked workers log each job they draw (a 30 ms pause each) instead of drawing it; return the log."""
    log = tmp_path / "drawn.txt"

    def render(job, folder):
        time.sleep(0.03)
        with open(log, "a") as f:
            f.write(job.name + "\n")

    monkeypatch.setattr(workers, "render", render)  # inherited by the forked worker
    return log


def test_the_quickest_forest_plots_are_drawn_with_the_later_batch_after_its_slow_figures(tmp_path, monkeypatch):
    """The specification curves and the component figure come last (after the sensitivity analysis): the workers
    end on a quarter of the forest plots (the smallest) instead of on those slow figures one after the other."""
    log = _drawn_in_order(monkeypatch, tmp_path)
    first = [FigureJob(f"forest_{i}", "forest", "t", {"png": f"{i}.png"}, {"rows": list(range(10 - i))}, {})
             for i in range(8)]
    crew = workers.Crew(first, tmp_path, 1)  # one worker: the order is the order drawn
    crew.send([FigureJob("specification_curve_x", "spec_curve", "t", {"png": "s.png"}, {"rows": [1]}, {})])
    crew.join()
    assert log.read_text().split() == [*(f"forest_{i}" for i in range(6)), "specification_curve_x",
                                       "forest_6", "forest_7"]


def test_the_forest_plots_held_back_are_drawn_when_no_later_batch_comes(tmp_path, monkeypatch):
    log = _drawn_in_order(monkeypatch, tmp_path)
    first = [FigureJob(f"forest_{i}", "forest", "t", {"png": f"{i}.png"}, {"rows": list(range(10 - i))}, {})
             for i in range(8)]
    workers.Crew(first, tmp_path, 2).join()
    assert sorted(log.read_text().split()) == [f"forest_{i}" for i in range(8)]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_meta_run_forks_its_figure_leader_before_the_analysis_and_it_makes_the_forest_plots(small, tmp_path,
                                                                                           monkeypatch):
    """The leader imports matplotlib while this process analyses (on the core the analysis leaves idle), then is
    handed the pooled results; before, it was forked after the analysis."""
    import multiprocessing as mp

    from meta.present import plots

    during, made = [], tmp_path / "made"
    real_analyse, real_jobs = pipeline.analyse, plots.forest_jobs

    def analyse(*args, **kwargs):
        during.extend(p.pid for p in mp.active_children() if p.name == "meta-figures")
        return real_analyse(*args, **kwargs)

    def forest_jobs(*args, **kwargs):
        made.write_text(str(os.getpid()))
        return real_jobs(*args, **kwargs)

    monkeypatch.setattr(pipeline, "analyse", analyse)
    monkeypatch.setattr(plots, "forest_jobs", forest_jobs)  # inherited by the spare, forked after this
    status = cli.main(["run", "--inputs", str(small), "--plan", str(small / "plan.toml"), "--out",
                       str(tmp_path / "outputs"), "--jobs", "2"])
    assert status == 0 and (tmp_path / "outputs" / "figures" / "forest_income_gt70_wml_m16.png").is_file()
    assert len(during) == 1, "no figure leader was waiting while the analysis ran"
    assert int(made.read_text()) == during[0], "the forest plots' jobs were not made by the leader forked first"
    assert _gone(during[0])


def test_a_cold_meta_run_forks_its_figure_leader_before_it_reads_the_inputs_and_a_rerun_does_not(small, tmp_path,
                                                                                                 monkeypatch):
    """With no previous outputs the leader is forked before the reading (it has imported matplotlib by the time the
    analysis hands it the forest plots); with previous outputs, which a rerun may take whole, not before reading."""
    import multiprocessing as mp

    from meta.read import load

    spares_at_reading, real_load = [], load.load_inputs

    def load_inputs(*args, **kwargs):
        spares_at_reading.append([p.pid for p in mp.active_children() if p.name == "meta-figures"])
        return real_load(*args, **kwargs)

    monkeypatch.setattr(load, "load_inputs", load_inputs)
    run = ["run", "--inputs", str(small), "--plan", str(small / "plan.toml"), "--out", str(tmp_path / "outputs"),
           "--jobs", "2"]
    assert cli.main(run) == 0
    assert cli.main(run) == 0  # the same inputs: the outputs are taken whole, nothing is drawn
    first, rerun = spares_at_reading
    assert len(first) == 1 and _gone(first[0]), "the cold run's leader was not waiting while the inputs were read"
    assert rerun == [], "a rerun forked a figure leader before it knew whether it draws"
    assert [p for p in mp.active_children() if p.name == "meta-figures"] == []


def test_a_spare_leader_forked_while_the_collector_is_paused_collects_again_once_warm(tmp_path, monkeypatch):
    """Forked before the reading, the leader inherits the paused collector (meta.control.pause_gc); once warm it
    hides what it imported from the collector and collects again, as the run does after reading."""
    import gc
    import json

    from meta import control

    def render(job, folder):  # what the leader's collector does while it draws
        state = [gc.isenabled(), gc.get_threshold()[0], gc.get_freeze_count() > 0]
        (tmp_path / "gc.json").write_text(json.dumps(state))

    monkeypatch.setattr(workers, "render", render)  # inherited by the spare, forked after this
    paused = control.pause_gc()
    assert paused is not None
    try:
        spare = workers.Spare(None, paused)
    finally:
        control.unfreeze_gc(False, paused)
    workers.Crew([FigureJob("x", "forest", "t", {"png": "x.png"})], tmp_path, 2, spare=spare).join()
    assert json.loads((tmp_path / "gc.json").read_text()) == [True, control.COMMAND_GC_THRESHOLD, True]
    assert gc.get_freeze_count() == 0 and gc.isenabled()


def test_an_error_in_what_the_analysis_completes_after_the_hand_off_is_reported_as_the_analysis(small, tmp_path,
                                                                                               monkeypatch, capsys):
    """The coverage matrix (and the single studies' Bayesian fits) are made after the figures are handed over; an
    error there says 'while analysing', not 'while drawing the figures'."""
    from meta.analyses import tables

    def coverage(*args, **kwargs):
        raise RuntimeError("SYNTHETIC failure in the coverage matrix")

    monkeypatch.setattr(tables, "coverage", coverage)
    status = cli.main(["run", "--inputs", str(small), "--plan", str(small / "plan.toml"), "--out",
                       str(tmp_path / "outputs"), "--jobs", "2"])
    err = capsys.readouterr().err
    assert status == cli.EXIT_INTERNAL and "internal error while analysing" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_spare_leader_nobody_takes_is_stopped_at_the_end_of_its_block():
    with outputs.standing_by(True, "nl", jobs=2) as spare:
        assert spare is not None and spare.proc.is_alive()
    assert spare.proc.exitcode is not None and _gone(spare.proc.pid)


def test_no_spare_leader_is_forked_without_figures_or_with_one_job():
    for draw, jobs in ((False, 2), (True, 1)):
        with outputs.standing_by(draw, "nl", jobs=jobs) as spare:
            assert spare is None


def test_a_spare_leader_gone_before_the_figures_are_handed_over_is_replaced_by_a_leader_forked_then(small, tmp_path):
    results = pipeline.analyse(small, load_plan(small / "plan.toml"), sensitivity=False)
    out = tmp_path / "outputs"
    with outputs.standing_by(True, "en", jobs=2) as spare:
        spare.proc.kill()
        spare.proc.join()
        with outputs.writing(results, out, None, draw=True, lang="en", jobs=2, spare=spare) as writer:
            [crew] = writer.drawing.crews
            assert crew.proc is not spare.proc
            writer.finish(pipeline.add_sensitivity(results))
    assert (out / "figures" / "forest_income_gt70_wml_m16.png").is_file()


def test_ctrl_c_during_the_analysis_stops_the_waiting_figure_leader(small, tmp_path, monkeypatch, capsys):
    import multiprocessing as mp

    during = []

    def interrupted(*args, **kwargs):
        during.extend(p.pid for p in mp.active_children() if p.name == "meta-figures")
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "analyse", interrupted)
    status = cli.main(["run", "--inputs", str(small), "--plan", str(small / "plan.toml"), "--out",
                       str(tmp_path / "outputs"), "--jobs", "2"])
    assert status == 130 and len(during) == 1
    assert _gone(during[0]), "the waiting figure leader outlived the run"
    assert not (tmp_path / "outputs").exists()


def test_a_signal_in_a_figure_leaders_first_moments_never_runs_the_parents_handler(tmp_path, monkeypatch):
    """The CLI's handlers raise; run in the child before it set its own, the exception escaped multiprocessing's
    start-up and the child went on as a copy of the parent (a hung test under load). Now the child holds the
    signal until its own handling is set, and SIGTERM then ends it."""
    import signal

    def parents_handler(signum, frame):  # what the CLI installs: raise where the signal lands
        raise SystemExit(128 + signum)

    real_own = workers._own

    def slow_own(*args):  # the signal is sent while the child has not set its handling yet
        time.sleep(0.5)
        real_own(*args)

    monkeypatch.setattr(workers, "_own", slow_own)
    previous = signal.signal(signal.SIGTERM, parents_handler)
    try:
        spare = workers.Spare()
    finally:
        signal.signal(signal.SIGTERM, previous)
    spare.proc.terminate()  # at once: the child is still in multiprocessing's start-up or sleeping
    spare.proc.join(timeout=30)
    assert spare.proc.exitcode == -signal.SIGTERM, spare.proc.exitcode
    spare.conn.close()
