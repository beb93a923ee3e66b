"""Report tables: the tidy frame, seed statistics, ranking by direction, `bench report`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from scipy import stats

from bench.cli import cli
from metrics.keys import METRICS, MetricKey, headline, register, secondary
from reports.frame import (
    cheapest_budget,
    compare_runs,
    neighbour_tests,
    protocol_groups,
    ranking_agreement,
    ranking_by_budget,
    summarize,
    tidy,
    wide_table,
)


def row(variant: str, seed: int, fid: float, is_: float, status: str = "ok") -> dict:
    proto = {"extractor": "fmnist-evaluator", "weights_sha256": "ab" * 32, "num_samples": 100,
             "reference": {"split": "test", "size": 160}}  # fmt: skip
    return {
        "variant": variant, "seed": seed, "status": status, "kimg": 1.0, "img_per_s": 10.0,
        "metrics": {"fid_fmnist": fid, "is_fmnist": is_} if status == "ok" else {},
        "protocol": {"fmnist": proto},
    }  # fmt: skip


ROWS = [
    row("a", 0, 10.0, 5.0),
    row("a", 1, 14.0, 6.0),
    row("a", 2, 12.0, 7.0),
    row("b", 0, 20.0, 8.0),
    row("b", 1, 22.0, 9.0),
    row("c", 0, 0.0, 0.0, status="diverged"),
]


def test_tidy_keeps_the_latest_row_per_job() -> None:
    rows = [row("a", 0, 99.0, 1.0), *ROWS]  # an older row of (a, 0) first
    f = tidy({"r": rows})
    a0 = f[(f.variant == "a") & (f.seed == 0) & (f.metric == "fid_fmnist")]
    assert a0["value"].tolist() == [10.0]
    assert f[f.variant == "c"]["metric"].isna().all()  # a diverged job, without metrics
    assert set(f["protocol"].dropna()) == {"fmnist-evaluator@abababab N=100 vs test[160]"}


def test_summary_statistics_and_direction() -> None:
    s = summarize(tidy({"r": ROWS})).set_index(["variant", "metric"])
    a = s.loc[("a", "fid_fmnist")]
    values = np.array([10.0, 14.0, 12.0])
    half = stats.t.ppf(0.975, 2) * values.std(ddof=1) / np.sqrt(3)
    assert a["n"] == 3 and a["mean"] == pytest.approx(12.0)
    assert a["std"] == pytest.approx(values.std(ddof=1))
    assert (a["ci_low"], a["ci_high"]) == pytest.approx((12.0 - half, 12.0 + half))
    # FID: lower is better, so a (12) beats b (21); IS: higher is better, so b wins.
    assert s.loc[("a", "fid_fmnist"), "best"] and not s.loc[("b", "fid_fmnist"), "best"]
    assert s.loc[("b", "is_fmnist"), "best"] and s.loc[("a", "is_fmnist"), "rank"] == 2
    table = wide_table(summarize(tidy({"r": ROWS})), ["fid_fmnist", "is_fmnist"], "r")
    assert (
        table.loc["a", "fid_fmnist"].startswith("12.0 ± 2.0 [7.0, 17.0]")
        and "*" in table.loc["a", "fid_fmnist"]
    )
    assert table.loc["b", "is_fmnist"].endswith("*")


def test_cells_never_show_minus_zero() -> None:
    """A one-class histogram's entropy is -0.0 in floating point; the table shows 0.000."""
    s = summarize(tidy({"r": [row("a", 0, -0.0, -0.0001), row("b", 0, -1.0, 2.0)]}))
    table = wide_table(s, ["fid_fmnist", "is_fmnist"], "r")
    assert table.loc["a", "fid_fmnist"] == "0.000" and table.loc["a", "is_fmnist"] == "0.000"
    assert table.loc["b", "fid_fmnist"].startswith("-1.000")


def test_compare_runs_ranks_across_runs() -> None:
    worse = [dict(r, metrics={"fid_fmnist": r["metrics"]["fid_fmnist"] + 5, "is_fmnist": 1.0})
             for r in ROWS if r["status"] == "ok"]  # fmt: skip
    s = summarize(tidy({"base": ROWS, "new": worse}))
    t = compare_runs(s, "a", ["fid_fmnist", "is_fmnist"])
    assert list(t.index) == ["base", "new"] and t.loc["base", "fid_fmnist"].endswith("*")
    assert t.loc["new", "fid_fmnist"].startswith("17.0 ± 2.0 [")  # a's FIDs + 5, over 3 seeds
    assert not t.loc["new", "fid_fmnist"].endswith("*")
    base_is = t.loc["base", "is_fmnist"]
    assert base_is.startswith("6.000") and base_is.endswith("*")
    assert t.loc["new", "is_fmnist"] == "1.000 ± 0.000 [1.000, 1.000]"


def test_ranking_agreement_is_kendalls_tau() -> None:
    """Same order: tau 1; reversed: -1; a variant missing from one run is left out."""
    base = [row(v, 0, fid, 10 - fid) for v, fid in (("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0))]
    same = [row(v, 0, fid * 10, 0.0) for v, fid in (("a", 1.0), ("b", 2.0), ("c", 3.0))]
    flipped = [row(v, 0, -fid, fid) for v, fid in (("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0))]
    s = summarize(tidy({"base": base, "same": same, "flipped": flipped}))
    t = ranking_agreement(s, "base", "same", ["fid_fmnist", "is_fmnist"]).set_index("metric")
    assert t.loc["fid_fmnist", "kendall_tau"] == pytest.approx(1.0)
    assert t.loc["fid_fmnist", "variants"] == 3 and "is_fmnist" not in t.index  # IS all tied
    t = ranking_agreement(s, "base", "flipped", ["fid_fmnist", "is_fmnist"]).set_index("metric")
    assert t["kendall_tau"].tolist() == pytest.approx([-1.0, -1.0])
    assert t.loc["fid_fmnist", "kendall_tau"] == pytest.approx(
        stats.kendalltau([1, 2, 3, 4], [-1, -2, -3, -4])[0]
    )


def test_neighbour_tests_are_welch_t_tests_in_rank_order() -> None:
    """Neighbours in each metric's direction; a clear gap over three seeds is separated
    (Welch's t = 10 / sqrt(2/3) = 12.25 on 4 degrees of freedom: p = 2.5e-4), an overlap is
    not, and one seed gives no p-value; the two-class variant is ranked apart."""
    seeds = {"a": [10.0, 11.0, 12.0], "b": [20.0, 21.0, 22.0], "c": [19.0, 22.0, 20.0],
             "d": [40.0]}  # fmt: skip
    rows = [row(v, i, fid, -fid) for v, fids in seeds.items() for i, fid in enumerate(fids)]
    other = row("two", 0, 1.0, 1.0)
    other["protocol"]["fmnist"] = {**other["protocol"]["fmnist"], "num_samples": 50}
    frame = tidy({"r": [*rows, other]})
    s = summarize(frame)
    t = neighbour_tests(frame, s, "r", "fid_fmnist")
    assert [(x.better, x.worse) for x in t.itertuples()] == [("a", "c"), ("c", "b"), ("b", "d")]
    assert t["p_value"].iloc[0] == pytest.approx(
        stats.ttest_ind([10, 11, 12], [19, 22, 20], equal_var=False).pvalue
    )
    assert t["separated"].tolist() == [True, False, False]
    assert t["p_value"].iloc[1] > 0.5 and np.isnan(t["p_value"].iloc[2])
    assert t["gap"].iloc[0] == pytest.approx(9.3333333)
    ab = neighbour_tests(tidy({"r": rows[:6]}), summarize(tidy({"r": rows[:6]})), "r", "fid_fmnist")
    assert ab["p_value"].iloc[0] == pytest.approx(2.5e-4, abs=0.5e-4)  # the hand value above
    # is_fmnist = -fid, higher is better: the same neighbours in the same order
    t = neighbour_tests(frame, s, "r", "is_fmnist")
    assert [(x.better, x.worse) for x in t.itertuples()] == [("a", "c"), ("c", "b"), ("b", "d")]


def test_ranking_by_budget_bins_tracked_points_and_finds_the_cheapest_budget() -> None:
    """Points at the batch-dependent kimg near each nominal budget are binned to it; the
    ranking at 10 kimg is reversed (tau -1), from 20 on it is the final one (tau 1); a budget
    one variant has no point at is left out; the cheapest agreeing budget is 20."""
    final = {"a": 1.0, "b": 2.0, "c": 3.0}
    kimgs = {"a": [9.984, 19.968, 29.952], "b": [10.24, 20.48, 30.72], "c": [10.048, 20.096]}
    fids = {"a": [30.0, 10.0, 5.0], "b": [20.0, 15.0, 8.0], "c": [10.0, 25.0]}
    tracked = pd.DataFrame(
        [{"variant": v, "seed": seed, "kimg": k, "fid_fmnist": f + seed}
         for v in final for seed in (0, 1) for k, f in zip(kimgs[v], fids[v], strict=True)]
    )  # fmt: skip
    t = ranking_by_budget(tracked, final, 10.0)
    assert t["kimg"].tolist() == [10.0, 20.0]  # 30: c has no point there
    assert t["kendall_tau"].tolist() == pytest.approx([-1.0, 1.0])
    assert cheapest_budget(t) == 20.0
    assert cheapest_budget(t.assign(kendall_tau=[1.0, 0.5])) is None  # the last one disagrees
    assert cheapest_budget(t.assign(tau=[1.0, float("nan")]), column="tau") is None  # no tau
    assert ranking_by_budget(tracked, {"a": 1.0, "b": 2.0}, 10.0).empty  # < 3 variants


def test_the_tables_say_which_machines_made_the_rows(tmp_path: Path) -> None:
    """A table computed in pieces names every CPU that trained its rows (a job moved
    between machines as 'A then B'), the CPUs that scored them, numerics and threads."""
    machine = {"precision": "fp32", "threads": 2, "device": "cpu"}
    rows = [
        {**row("a", 0, 10.0, 5.0), **machine, "train_cpus": ["Intel Xeon"],
         "cpu": {"model": "Intel Xeon"}},
        {**row("a", 1, 11.0, 5.0), **machine, "train_cpus": ["Intel Xeon", "AMD EPYC"],
         "cpu": {"model": "AMD EPYC"}},
        {**row("b", 0, 12.0, 5.0), **machine, "train_cpus": ["AMD EPYC"],
         "cpu": {"model": "AMD EPYC"}},
        {**row("b", 1, 0.0, 0.0, status="failed"), **machine, "train_cpus": ["Other"]},
    ]  # fmt: skip
    run = _report(tmp_path / "r", rows)
    line = (
        "Made on: trained on Intel Xeon (1 job), Intel Xeon then AMD EPYC (1 job), AMD EPYC "
        "(1 job); scored on AMD EPYC (2 jobs), Intel Xeon (1 job); fp32, 2 thread(s) per job."
    )
    assert line in (run / "report" / "tables.md").read_text()
    assert line in (run / "report" / "report.html").read_text()


def test_the_cost_table_sums_training_scoring_and_the_raw_g(tmp_path: Path) -> None:
    """Per variant: mean img/s, training h, scoring min (the raw G's scoring included) and
    CPU-h per job, the variant's CPU-h summed over its jobs, and the whole run's; a job
    without CPU time shows – for its variant's sum, and the run's sums the jobs that have
    one; jobs that did not finish cost nothing here. The table reaches tables.md and the
    HTML page."""
    from reports.cost import cost_table

    def job(variant: str, seed: int, cpu: tuple[float, float] | None, raw: float = 0.0) -> dict:
        r = {**row(variant, seed, 10.0, 5.0), "kimg": 1000.0, "img_per_s": 500.0 + seed * 100,
             "train_seconds": 3600.0, "eval_seconds": 600.0 + seed * 60}  # fmt: skip
        if cpu is not None:
            r |= {"train_cpu_seconds": cpu[0], "eval_cpu_seconds": cpu[1]}
        if raw:
            r["raw_g"] = {"eval_seconds": raw / 2, "eval_cpu_seconds": raw}
        return r

    rows = [
        job("a", 0, (7200.0, 1800.0), raw=1800.0),  # 3 CPU-h
        job("a", 1, (7200.0, 1800.0)),  # 2.5 CPU-h
        job("b", 0, None),  # resumed from a checkpoint that had no CPU time
        job("b", 1, (3600.0, 0.0)),
        row("c", 0, 0.0, 0.0, status="failed"),
    ]
    t = cost_table(rows)
    assert list(t.index) == ["a", "b", "all jobs"]
    assert t.loc["a", "jobs"] == 2 and t.loc["a", "img/s"] == 550.0
    assert t.loc["a", "train h"] == 1.0
    assert t.loc["a", "scoring min"] == pytest.approx(((600 + 900) + 660) / 2 / 60)  # 18
    assert t.loc["a", "CPU-h per job"] == pytest.approx(2.75)
    assert t.loc["a", "CPU-h"] == pytest.approx(5.5)
    assert np.isnan(t.loc["b", "CPU-h"]) and t.loc["b", "CPU-h per job"] == 1.0
    assert t.loc["all jobs", "jobs"] == 4 and t.loc["all jobs", "CPU-h"] == pytest.approx(6.5)
    assert cost_table([row("c", 0, 0.0, 0.0, status="failed")]).empty

    run = _report(tmp_path / "r", rows)
    md = (run / "report" / "tables.md").read_text()
    assert "| `a` | 2 | 1,000.0 | 550 | 1.00 | 18.0 | 2.75 | 5.5 |" in md
    assert "| `b` | 2 | 1,000.0 | 550 | 1.00 | 10.5 | 1.00 | – |" in md
    assert "| `all jobs` | 4 | – | – | – | – | – | 6.5 |" in md
    html = (run / "report" / "report.html").read_text()
    cost_html = html.split("<h3>Cost</h3>", 1)[1].split("</table>", 1)[0]
    assert "CPU-h per job" in cost_html
    assert all(f"<th>{v}</th>" in cost_html for v in ("a", "b", "all jobs"))  # rows named


def _report(run: Path, rows: list[dict]) -> Path:
    """Write ``rows`` as the results of run folder ``run`` and run `bench report` on it."""
    run.mkdir(exist_ok=True)
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(cli, ["report", str(run)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return run


def test_every_registered_key_reaches_the_tables(tmp_path: Path) -> None:
    """A row with every registered key: the headline keys are the results table's columns
    in registry order, every other key but the spreads a column of "More metrics", and every
    key a row of summary.csv with its direction."""
    values = {k: float(i + 1) for i, k in enumerate(METRICS)}
    rows = [dict(row("a", s, 1.0, 1.0), metrics=values) for s in (0, 1)]
    run = _report(tmp_path / "run", rows)
    md = (run / "report" / "tables.md").read_text().split("### All metrics")[1]
    headers = [line.split(" | ")[1:] for line in md.splitlines() if line.startswith("| variant |")]
    assert [c.rstrip(" |") for c in headers[0]] == headline()
    assert [c.rstrip(" |") for c in headers[1]] == secondary()
    assert {"class_entropy", "intra_fid_fmnist"} <= set(headline())  # shown since issue 14
    summary = pd.read_csv(run / "report" / "summary.csv")
    assert set(summary["metric"]) == set(METRICS)
    hib = summary.drop_duplicates("metric").set_index("metric")["higher_is_better"]
    assert all(bool(hib[k]) == METRICS[k].higher_is_better for k in METRICS)
    html = (run / "report" / "report.html").read_text()
    assert all(k in html for k in [*headline(), *secondary()])


def test_registry_refuses_bad_keys() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(MetricKey("fid_fmnist", False, "again", "fmnist"))
    with pytest.raises(ValueError, match="group"):
        MetricKey("new_metric", True, "x", "nowhere")
    with pytest.raises(ValueError, match="spread of unregistered"):
        register(MetricKey("nothing_std", False, "x", "fmnist", spread_of="nothing"))
    assert "nothing_std" not in METRICS


def test_report_command_writes_tables(tmp_path: Path) -> None:
    run = _report(tmp_path / "run1", ROWS)
    md = (run / "report" / "tables.md").read_text()
    assert "| `a` |" in md and "`c` seed 0: diverged" in md and "lower is better" in md
    summary = pd.read_csv(run / "report" / "summary.csv")
    assert {"mean", "std", "ci_low", "ci_high", "rank", "best"} <= set(summary.columns)
    two = CliRunner().invoke(cli, ["report", str(run), str(run), "--out", str(tmp_path / "o")])
    assert two.exit_code == 0 and "Runs side by side" in two.output
    assert "Ranking agreement" not in two.output  # two variants with metrics: too few


def test_report_on_a_non_run_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "no results.jsonl" in result.output
    assert "Traceback" not in result.output


def _run_folder(tmp_path: Path, rows: list[dict], name: str = "run1") -> Path:
    run = tmp_path / name
    run.mkdir()
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def test_html_is_self_contained_and_escaped(tmp_path: Path) -> None:
    import base64
    import re

    from torchvision.io import decode_png

    evil = "<script>alert(1)</script>"
    rows = [*ROWS, row(evil, 0, 30.0, 2.0)]
    run = _run_folder(tmp_path, rows)
    result = CliRunner().invoke(cli, ["report", str(run)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    page = (run / "report" / "report.html").read_text()
    assert "<script" not in page and "&lt;script&gt;" in page  # escaped, never executed
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)  # nothing fetched
    assert "@import" not in page and "url(" not in page
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) >= 3  # bars per metric, IS vs FID
    for b64 in images:
        img = decode_png(torch.frombuffer(bytearray(base64.b64decode(b64)), dtype=torch.uint8))
        assert img.shape[1] > 50 and img.shape[2] > 50
    for variant in ("a", "b", "c"):
        assert f">{variant}<" in page
    assert "diverged" in page and 'name="viewport"' in page


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (./setup.sh installs it)")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    """A real browser renders the page: the screenshot is not blank and the DOM it built
    names every variant (the PNGs themselves are decoded in the test above)."""
    import subprocess

    from torchvision.io import decode_png

    run = _run_folder(tmp_path, ROWS)
    assert CliRunner().invoke(cli, ["report", str(run)]).exit_code == 0
    page = (run / "report" / "report.html").resolve()
    flags = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--disable-background-networking", "--disable-component-update", "--no-first-run",
        "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=420,1600",
    ]  # fmt: skip
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", page.as_uri()], check=True, timeout=120,
                   capture_output=True)  # fmt: skip
    img = decode_png(torch.frombuffer(bytearray(shot.read_bytes()), dtype=torch.uint8)).float()
    assert img.shape[1:] == (1600, 420)  # a phone-width viewport
    assert img.std() > 10  # not a blank page
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], check=True, timeout=120,
                         capture_output=True, text=True).stdout  # fmt: skip
    for variant in ("a", "b", "c"):
        assert f">{variant}<" in dom
    assert dom.count("<img") >= 3


def _report_images(run: Path) -> tuple[str, int]:
    """`bench report` on ``run``: the page and its number of embedded PNGs."""
    import re

    assert CliRunner().invoke(cli, ["report", str(run)]).exit_code == 0
    page = (run / "report" / "report.html").read_text()
    return page, len(re.findall(r'src="data:image/png;base64,', page))


def test_per_class_fid_heatmap_for_conditional_rows(tmp_path: Path) -> None:
    cond = row("cgan", 0, 50.0, 3.0)
    cond["protocol"]["fmnist"]["fid_fmnist_per_class"] = {str(c): 10.0 + c for c in range(10)}
    page, with_heatmap = _report_images(_run_folder(tmp_path, [*ROWS, cond]))
    assert "per-class FID of conditional variants" in page
    assert with_heatmap == _report_images(_run_folder(tmp_path, ROWS, "plain"))[1] + 1


def test_out_names_the_html_file(tmp_path: Path) -> None:
    run = _run_folder(tmp_path, ROWS)
    target = tmp_path / "pages" / "cmp.html"
    result = CliRunner().invoke(cli, ["report", str(run), "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text().startswith("<!DOCTYPE html>")
    assert (target.parent / "tables.md").is_file() and (target.parent / "tidy.csv").is_file()
    pngs = {p.name for p in (target.parent / "figures").glob("*.png")}
    assert {"fid_fmnist.png", "is_fmnist.png", "is_vs_fid.png"} <= pngs  # also as files
    assert not (run / "report").exists()
    target.unlink()
    target.mkdir()  # a folder called *.html: refused, not overwritten
    bad = CliRunner().invoke(cli, ["report", str(run), "--out", str(target)])
    assert bad.exit_code == 2 and "not an .html file" in bad.output


def test_metric_vs_kimg_figure_from_tracked_points(tmp_path: Path) -> None:
    rows = [dict(r, paths={"tracked": f"{r['variant']}/seed{r['seed']}/tracked.csv"},
                 tracked={"samples": 100, "every_kimg": 0.5})
            for r in [*ROWS, row("e", 0, 30.0, 1.0)]]  # fmt: skip
    run = _run_folder(tmp_path, rows)
    for r in rows:
        f = run / r["paths"]["tracked"]
        f.parent.mkdir(parents=True)
        pd.DataFrame({"step": [0, 5, 10], "kimg": [0.0, 0.5, 1.0],
                      "fid_fmnist": [500.0, 200.0 + r["seed"], 100.0],
                      "is_fmnist": [1.0, 2.0, 3.0]}).to_csv(f, index=False)  # fmt: skip
    page, with_curve = _report_images(run)
    assert "FID and IS (fmnist) of G_ema during training, 100 samples per point" in page
    md = (run / "report" / "tables.md").read_text()
    assert "### Which neighbours differ (`fid_fmnist`)" in md
    assert "| `a` | `b` |" in md  # a: 12.0 +- 2.0 over 3 seeds, b: 21.0 over 2
    assert "the budget that predicts its ranking" in page
    # at 0.5 kimg the curves (200 + seed) order e, b, a, the final table a, b, e: tau -1;
    # at 0 and 1 kimg every curve ties (no order): left out
    assert "it stays >= 0.8 at no budget" in md and "| 0.5 | 3 | -1.000 |" in md
    plain = _run_folder(tmp_path, [*ROWS, row("e", 0, 30.0, 1.0)], "plain")
    assert with_curve == _report_images(plain)[1] + 1


def test_budget_table_separates_the_budget_from_the_feature_space(tmp_path: Path) -> None:
    """Ranked by FID(inception) but tracked in FID(fmnist): each budget is ranked against
    both finals, and the sentence says how far the two finished rankings agree. Finals:
    FID(fmnist) orders a, b, c, d; FID(inception) d, a, b, c (tau 0: three pairs concordant,
    three not; d moves most, 4th to 1st). The curves at 0.5 kimg order d, a, b, c (tau 1 vs
    FID(inception), 0 vs FID(fmnist)), at 1 kimg a, b, c, d (the reverse)."""
    finals = {"a": (10.0, 15.0), "b": (20.0, 20.0), "c": (30.0, 30.0), "d": (40.0, 5.0)}
    at_half = {"a": 200.0, "b": 300.0, "c": 400.0, "d": 100.0}
    run = tmp_path / "run"
    rows = []
    for v, (fmnist, inception) in finals.items():
        r = _inception_row(v, 0, inception)
        r["metrics"]["fid_fmnist"] = fmnist
        r.update(
            paths={"tracked": f"{v}/seed0/tracked.csv"}, tracked={"samples": 100, "every_kimg": 0.5}
        )
        rows.append(r)
        (run / v / "seed0").mkdir(parents=True)
        pd.DataFrame({"step": [0, 5, 10], "kimg": [0.0, 0.5, 1.0],
                      "fid_fmnist": [500.0, at_half[v], fmnist + 50], "is_fmnist": 1.0}).to_csv(
            run / r["paths"]["tracked"], index=False)  # fmt: skip
    md = (_report(run, rows) / "report" / "tables.md").read_text()
    assert "Against the final table's own FID(fmnist) (the same feature space" in md
    assert "it stays >= 0.8 from 1 kimg on; against `fid_inception` at no budget" in md
    assert "agree at tau 0.000 (p 1, 4 variants)" in md
    assert "`d` (4th by FID(fmnist), 1st by `fid_inception`)" in md
    assert (
        "| kimg | variants | Kendall tau vs `fid_inception` | p-value | tau vs final FID(fmnist)"
        in md
    )
    assert "| 0.5 | 4 | 1.000 | 0.0833 | 0.000 | 1 |" in md
    assert "| 1 | 4 | 0.000 | 1 | 1.000 | 0.0833 |" in md
    assert "4th by FID(fmnist)" in (run / "report" / "report.html").read_text()


def test_a_tracked_log_without_its_columns_is_left_out(tmp_path: Path) -> None:
    """A tracked.csv without is_fmnist (damaged or hand-made) is listed under "Files left
    out"; the report goes on without its curve instead of failing in the figure."""
    rows = [dict(r, paths={"tracked": f"{r['variant']}/seed{r['seed']}/tracked.csv"}) for r in ROWS]
    run = _run_folder(tmp_path, rows)
    for r in rows:
        f = run / r["paths"]["tracked"]
        f.parent.mkdir(parents=True)
        f.write_text("step,kimg,fid_fmnist\n0,0.0,500.0\n")
    result = CliRunner().invoke(cli, ["report", str(run)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Files left out" in result.output and "a/seed0/tracked.csv (ValueError" in result.output


def test_smoothness_protocols_name_their_own_settings() -> None:
    r = row("a", 0, 10.0, 5.0)
    r["metrics"].update(ppl=3.0, interp_discontinuity=1.5)
    r["protocol"]["smoothness"] = {
        "similarity": "fmnist-evaluator-l2", "samples": 200, "epsilon": 1e-4,
        "latent_paths": {"paths": 8, "steps": 10, "interpolation": "slerp"},
    }  # fmt: skip
    f = tidy({"r": [r]}).set_index("metric")["protocol"]
    assert f["ppl"] == "fmnist-evaluator-l2 200 pairs eps 0.0001"
    assert f["interp_discontinuity"] == "fmnist-evaluator-l2 8 slerp paths x 10 steps"


def _inception_row(variant: str, seed: int, fid: float, n: int = 10_000) -> dict:
    """A row whose FID(inception) used ``n`` generated images vs the 10k test images."""
    r = row(variant, seed, 100.0, 3.0)
    r["kimg"] = 1200.0
    r["metrics"]["fid_inception"] = fid
    r["protocol"]["inception"] = {
        "extractor": "inception-v3-pool3-offline", "weights_sha256": "cd" * 32,
        "num_samples": n, "reference": {"split": "test", "size": 10_000, "classes": "all"},
    }  # fmt: skip
    return r


def test_published_fids_beside_a_lucic_protocol_run(tmp_path: Path) -> None:
    """Variants whose FID(inception) is 10k vs the 10k test images are set beside the
    published model of their loss (from the registry, or config.json's recipe); a variant
    scored on 1k images is left out, and a run without any gets no such section."""
    rows = [_inception_row("dcgan", s, f) for s, f in enumerate((30.0, 32.0, 34.0))]
    rows += [_inception_row("sngan", 0, 20.0), _inception_row("wgan-gp", 0, 40.0, n=1_000)]
    rows += [_inception_row("cdcgan", 0, 25.0)]  # conditional: no published counterpart
    for r, raw in zip(rows, (40.0, 44.0), strict=False):  # dcgan seeds 0, 1: the raw G too
        r["raw_g"] = {"metrics": {"fid_inception": raw}, "protocol": dict(r["protocol"])}
    run = _report(tmp_path / "lucic", rows)
    md = (run / "report" / "tables.md").read_text()
    section = md.split("### Beside published Fashion-MNIST FIDs")[1]
    lines = {line.split(" | ")[0]: line for line in section.splitlines() if line.startswith("| `")}
    half = stats.t.ppf(0.975, 2) * 2.0 / np.sqrt(3)
    assert f"32.0 ± 2.0 [{32 - half:.1f}, {32 + half:.1f}]" in lines["| `dcgan`"]
    assert "| 42.0 ± 2.8 (2 seeds) | NS GAN | 26.5 ± 1.6 | +5.5 |" in lines["| `dcgan`"]
    assert "| `cdcgan`" not in lines
    assert "| bce | 1200 | 3 |" in lines["| `dcgan`"]
    assert "| hinge |" in lines["| `sngan`"] and lines["| `sngan`"].endswith("| – | – | – |")
    assert "| `wgan-gp`" not in lines  # scored on 1,000 images: not this protocol
    assert "| `PA-GAN` | 15.8 ± 1.1 |" in section and "Lucic et al. 2018, Table 2" in section
    html = (run / "report" / "report.html").read_text()
    assert "lucic beside published Fashion-MNIST FIDs" in html and "NS GAN" in html

    (run / "config.json").write_text(json.dumps({"variants": {"dcgan": {"loss": "wgan-gp"}}}))
    result = CliRunner().invoke(cli, ["report", str(run)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    md = (run / "report" / "tables.md").read_text()
    assert "| `dcgan` | wgan-gp | 1200 | 3 |" in md and "| WGAN GP | 24.5 ± 2.1 | +7.5 |" in md

    plain = _report(tmp_path / "quick", ROWS)
    assert "published" not in (plain / "report" / "tables.md").read_text()


def test_rows_of_another_protocol_are_ranked_apart(tmp_path: Path) -> None:
    """A two-class variant scored against its 2,000 test images does not take the "best"
    mark from the ten-class rows: ranks are per protocol, each group has its own best."""
    two = [row("cgan-mlp-2class", s, 5.0 + s, 2.0) for s in (0, 1)]  # better than every other
    for r in two:
        r["protocol"]["fmnist"] = {**r["protocol"]["fmnist"],
                                   "reference": {"split": "test", "size": 2000}}  # fmt: skip
    s = summarize(tidy({"r": [*ROWS[:5], *two]})).set_index(["variant", "metric"])
    assert s.loc[("a", "fid_fmnist"), "best"] and s.loc[("a", "fid_fmnist"), "rank"] == 1
    assert s.loc[("b", "fid_fmnist"), "rank"] == 2
    assert s.loc[("cgan-mlp-2class", "fid_fmnist"), "rank"] == 1  # first of its own protocol
    assert "[2000]" in s.loc[("cgan-mlp-2class", "fid_fmnist"), "protocol"]
    run = _report(tmp_path / "mixed", [*two, *ROWS[:5]])  # the two-class rows come first
    md = (run / "report" / "tables.md").read_text().split("### All metrics")[1]
    line = next(x for x in md.splitlines() if x.startswith("| `a`"))
    assert "12.0 ± 2.0" in line and "*" in line.split(" | ")[1]
    # ... and are listed below the ten-class rows, marked, with a footnote saying why.
    results = md[md.index("| variant | fid_fmnist") :]
    names = [x.split(" | ")[0] for x in results.split("\n\n")[0].splitlines()[2:]]
    assert names == ["| `a`", "| `b`", "| `cgan-mlp-2class` †"]
    assert "† scored against test[2000], another protocol" in results.split("\n\n")[1]
    page = (run / "report" / "report.html").read_text()
    assert "<th>cgan-mlp-2class †</th>" in page and "† scored against test[2000]" in page
    assert page.index("<th>b</th>") < page.index("<th>cgan-mlp-2class †</th>")


def test_figures_draw_rows_of_another_protocol_apart() -> None:
    """Figures separate what the tables rank apart: the two-class variant (scored against its
    classes' 2,000 test images) stands right of a dashed line in the bars, marked †, with its
    own marker in IS vs FID and dashed in the training curves; one protocol: nothing apart."""
    import matplotlib.pyplot as plt

    from reports import figures

    two = [row("cgan-mlp-2class", s, 5.0 + s, 2.0) for s in (0, 1)]
    for r in two:
        r["protocol"]["fmnist"] = {**r["protocol"]["fmnist"],
                                   "reference": {"split": "test", "size": 2000}}  # fmt: skip
    frame = tidy({"r": [*two, *ROWS[:5]]})  # listed first, drawn last
    main, apart, against = protocol_groups(frame, "fid_fmnist")
    assert (main, apart, against) == (["a", "b"], ["cgan-mlp-2class"], "test[2000]")
    fig = figures.bar_figure(frame, "fid_fmnist")
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["a", "b", "cgan-mlp-2class †"] and "test[2000]" in ax.get_title()
    assert [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == "--"] == [1.5]
    plt.close(fig)
    plain = figures.bar_figure(tidy({"r": ROWS[:5]}), "fid_fmnist")
    assert [t.get_text() for t in plain.axes[0].get_xticklabels()] == ["a", "b"]
    assert not [line for line in plain.axes[0].lines if line.get_linestyle() == "--"]
    plt.close(plain)
    assert protocol_groups(tidy({"r": ROWS[:5]}), "fid_fmnist")[1] == []
    assert figures.is_vs_fid(frame) and figures.metric_bars(frame, "fid_fmnist")
    tracked = pd.DataFrame([{"variant": v, "seed": 0, "kimg": k, "fid_fmnist": 10.0 + k,
                             "is_fmnist": 2.0} for v in ("a", "b", "cgan-mlp-2class")
                            for k in (0.0, 1.0)])  # fmt: skip
    assert figures.metric_vs_kimg(tracked, apart) != figures.metric_vs_kimg(tracked)


def test_a_users_run_ranked_together_with_committed_baselines(tmp_path: Path) -> None:
    """`bench report runs/mine <committed run folder>`: a plugin variant of the user's run is
    ranked in one table with the baselines of the same profile and budget (not retrained); a
    variant in both runs is labelled with its run; a run of another budget stays apart."""

    def rows(variants: dict[str, float], kimg: float = 1000.0) -> list[dict]:
        out = []
        for v, fid in variants.items():
            for s in (0, 1):
                r = row(v, s, fid + s, 5.0)
                r.update(profile="lucic", kimg_budget=kimg)
                out.append(r)
        return out

    baseline = _report(tmp_path / "baseline", rows({"dcgan": 20.0, "sngan-ema": 30.0}))
    mine = tmp_path / "mine"
    mine.mkdir()
    plugin_rows = rows({"lsgan": 25.0, "dcgan": 22.0})
    plugin_rows[0]["origin"] = {"plugin": "lsgan", "file": "gan.py", "sha256": "ab" * 32}
    (mine / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in plugin_rows))
    other = _report(tmp_path / "quick", rows({"dcgan": 300.0}, kimg=60.0))
    result = CliRunner().invoke(
        cli,
        ["report", str(mine), str(baseline), str(other), "--out", str(tmp_path / "r")],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    md = (tmp_path / "r" / "tables.md").read_text()
    section = md.split("## Ranked together: mine, baseline")[1].split("\n## ")[0]
    top, every = section.split("Every headline metric:")
    names = [x.split(" | ")[0] for x in top.splitlines() if x.startswith("| `")]
    assert names == ["| `dcgan (baseline)`", "| `dcgan (mine)`", "| `lsgan`", "| `sngan-ema`"]
    assert "| variant | seeds | FID(fmnist) | KID(fmnist) |" in top  # best first by FID
    names = [x.split(" | ")[0] for x in every.splitlines() if x.startswith("| `")]
    assert names == ["| `lsgan`", "| `dcgan (mine)`", "| `dcgan (baseline)`", "| `sngan-ema`"]
    best = next(x for x in every.splitlines() if x.startswith("| `dcgan (baseline)`"))
    assert "20.5 ± 0.7" in best and "*" in best.split(" | ")[1]
    assert "quick" not in md.split("## Ranked together:")[1].split("\n")[0]
    html = (tmp_path / "r" / "report.html").read_text()
    assert "Ranked together: mine, baseline" in html and "dcgan (mine)" in html
    together = html.split("Ranked together: mine, baseline")[1]
    assert together.index("<h3>Headline</h3>") < together.index("<h3>Every headline metric</h3>")


def test_the_headline_table_ranks_best_first_beside_the_floor_and_the_published(
    tmp_path: Path,
) -> None:
    """The table the README shows, first in each run's section (Markdown and HTML): the
    real-data floor on top, then the variants best first by FID(inception) with its 95%
    interval, the raw G, the same feature space's KID/recall/coverage, IS, cost and the
    published number of the loss family; a two-class variant last, marked †."""
    rows = [_inception_row("dcgan", s, f) for s, f in enumerate((30.0, 32.0, 34.0))]
    rows += [_inception_row("sngan", 0, 20.0), _inception_row("cdcgan", 0, 25.0)]
    two = _inception_row("cgan-mlp-2class", 0, 5.0)  # best of all, but another protocol
    two["protocol"]["inception"]["reference"]["size"] = 2000
    rows.append(two)
    for r, raw in zip(rows, (40.0, 44.0), strict=False):
        r["raw_g"] = {"metrics": {"fid_inception": raw}, "protocol": dict(r["protocol"])}
    for r in rows:
        r["metrics"]["kid_inception"] = r["metrics"]["fid_inception"] / 1000
        r.update(train_seconds=7200.0, eval_seconds=600.0)
    run = tmp_path / "lucic"
    run.mkdir()
    floor = [dict(_inception_row("real training images", d, 2.5 + d / 100), draw=d)
             for d in range(3)]  # fmt: skip
    (run / "floor.jsonl").write_text("".join(json.dumps(r) + "\n" for r in floor))
    _report(run, rows)  # the folder exists: write into it
    md = (run / "report" / "tables.md").read_text()
    head = md.split("### Headline")[1].split("### All metrics")[0]
    lines = [x for x in head.splitlines() if x.startswith("| `")]
    names = [x.split(" | ")[0] for x in lines]
    assert names == ["| `real data (floor)`", "| `sngan`", "| `cdcgan`", "| `dcgan`",
                     "| `cgan-mlp-2class` †"]  # fmt: skip
    assert head.splitlines()[4].startswith("| variant | seeds | FID(inception) | raw G | KID(")
    half = stats.t.ppf(0.975, 2) * 2.0 / np.sqrt(3)
    dcgan = lines[3].split(" | ")
    assert dcgan[1:4] == ["3", f"32.0 ± 2.0 [{32 - half:.1f}, {32 + half:.1f}]",
                          "42.0 ± 2.8 (2 seeds)"]  # fmt: skip
    assert dcgan[4] == "0.032 ± 0.002" and lines[3].endswith("| 2.00 | 10 | NS GAN: 26.5 ± 1.6 |")
    assert lines[1].split(" | ")[2] == "20.0 *" and lines[4].split(" | ")[2] == "5.000 *"
    assert lines[0].split(" | ")[1:3] == ["3", "2.510 ± 0.010 [2.485, 2.535]"]
    assert "† scored against test[2000]" in head
    page = (run / "report" / "report.html").read_text()
    assert page.index("<h3>Headline</h3>") < page.index("<h3>Real-data floor</h3>")
    assert "<th>real data (floor)</th>" in page and "NS GAN: 26.5 ± 1.6" in page
    assert (
        "### Headline" in (_report(tmp_path / "quick", ROWS) / "report" / "tables.md").read_text()
    )
    # A user's plugin variant beside these baselines: ranked among them, under their floor,
    # set beside the published model of the loss its config.json names.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.json").write_text(json.dumps({"variants": {"lsgan": {"loss": "bce"}}}))
    _report(mine, [_inception_row("lsgan", s, 22.0 + s) for s in (0, 1)])
    out = tmp_path / "both"
    done = CliRunner().invoke(cli, ["report", str(mine), str(run), "--out", str(out)])
    assert done.exit_code == 0, done.output
    top = (out / "tables.md").read_text().split("## Ranked together: mine, lucic")[1]
    lines = [x for x in top.split("Every headline metric:")[0].splitlines() if x.startswith("| `")]
    assert [x.split(" | ")[0] for x in lines[:4]] == [
        "| `real data (floor)`", "| `sngan`", "| `lsgan`", "| `cdcgan`"]  # fmt: skip
    assert lines[2].endswith("| NS GAN: 26.5 ± 1.6 |")


def test_the_headline_table_says_which_jobs_ended_without_a_result() -> None:
    """A recipe that diverged on a seed shows it beside its seed count; one that never
    finished a seed is listed below the ranked rows, not dropped from the table."""
    from reports.headline import headline_table, unfinished_jobs

    rows = [*ROWS, row("a", 3, 0.0, 0.0, status="diverged"), row("c", 1, 0.0, 0.0, "failed")]
    summary = summarize(tidy({"r": rows}))
    unfinished = unfinished_jobs(rows)
    assert unfinished == {"a": "1 diverged", "c": "1 diverged, 1 failed"}
    table = headline_table(summary, "r", "fid_fmnist", unfinished=unfinished)
    assert list(table.index) == ["a", "b", "c"]
    assert table.loc["a", "seeds"] == "3 (+1 diverged)" and table.loc["b", "seeds"] == "2"
    assert table.loc["c", "seeds"] == "0 (1 diverged, 1 failed)"
    assert table.loc["c", "FID(fmnist)"] == "–" and table.loc["a", "FID(fmnist)"].endswith("*")
