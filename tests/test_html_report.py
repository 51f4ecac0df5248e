"""The HTML report: one self-contained page whose first screen says the verdict, with every user string escaped."""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

import torchmedic
from torchmedic.cli import main
from torchmedic.monitor import Monitor

from setups import adam, digits, loader

HOSTILE = "<script>alert(1)</script>"
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?(?:https?:)?//""", re.I)


def dead_layer_model() -> nn.Sequential:
    """An MLP on digits whose first layer, named like a script tag, starts with every ReLU unit shut (bias -20)."""
    torch.manual_seed(0)
    model = nn.Sequential(OrderedDict([(HOSTILE, nn.Linear(64, 64)), ("relu", nn.ReLU()), ("out", nn.Linear(64, 10))]))
    with torch.no_grad():
        model.get_submodule(HOSTILE).bias.fill_(-20.0)
    return model


@pytest.fixture(scope="module")
def dead_report() -> torchmedic.Report:
    x, y = digits()
    model = dead_layer_model()
    return torchmedic.diagnose(model, loader(x, y), nn.CrossEntropyLoss(), adam(model), budget_s=20)


def assert_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not EXTERNAL.search(page), EXTERNAL.search(page)
    assert "<script" not in page.lower()  # the page runs no script: the hostile layer name is text, not markup


def test_a_faulty_diagnosis_page_says_the_cause_first_and_holds_its_plots(tmp_path: Path, dead_report) -> None:
    assert dead_report.findings, dead_report
    page = dead_report.to_html(tmp_path / "report.html")
    assert (tmp_path / "report.html").read_text(encoding="utf-8") == page
    assert_self_contained(page)
    first = dead_report.findings[0]
    verdict = page[: page.index("</div>")]  # the first screen: the verdict box
    assert first.cause in verdict and str(dead_report.symptom) in page.replace("&#x27;", "'")
    assert page.count("<svg") >= 3  # trial curves, per-layer propagation, gradients and updates at least
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_without_matplotlib_the_page_shows_tables_and_still_escapes(monkeypatch, dead_report) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    page = dead_report.to_html()
    assert_self_contained(page)
    assert "<svg" not in page and "Install matplotlib" in page
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in page  # the per-layer table names the layer


def test_a_healthy_report_renders_in_a_notebook_with_the_same_verdict() -> None:
    x, y = digits()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    report = torchmedic.diagnose(model, loader(x, y), nn.CrossEntropyLoss(), adam(model), budget_s=20)
    assert report.healthy, report
    fragment = report._repr_html_()
    assert fragment.startswith('<div class="torchmedic">') and "Healthy: no finding" in fragment
    assert fragment in report.to_html()


def test_the_report_command_renders_a_saved_json_report(tmp_path: Path, dead_report, capsys) -> None:
    saved = tmp_path / "diagnosis.json"
    saved.write_text(json.dumps(dead_report.to_dict()), encoding="utf-8")
    assert main(["report", str(saved)]) == 0
    page = (tmp_path / "diagnosis.html").read_text(encoding="utf-8")
    assert_self_contained(page)
    assert dead_report.findings[0].cause in page and "wrote" in capsys.readouterr().out
    saved.write_text("{not json", encoding="utf-8")
    assert main(["report", str(saved), "-o", str(tmp_path / "x.html")]) == 2
    assert "not JSON" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_the_report_command_renders_a_monitor_log_with_the_finding_marked(tmp_path: Path) -> None:
    page = monitored_run_page(tmp_path)
    assert_self_contained(page)
    assert "1 finding during training" in page and "optim.missing_zero_grad" in page and "<svg" in page


def test_a_repair_page_shows_the_proof_and_the_script(tmp_path: Path, capsys) -> None:
    x, y = digits()
    model = dead_layer_model()
    result = torchmedic.repair(model, loader(x, y), nn.CrossEntropyLoss(), adam(model), budget_s=40)
    assert result.verified, result
    page = result.to_html(tmp_path / "repair.html")
    assert_self_contained(page)
    assert "Repaired" in page[: page.index("</div>")] and "Lines for your script" in page
    assert "The diagnosis it acted on" in page and result._repr_html_() in page
    saved = tmp_path / "repair.json"
    saved.write_text(json.dumps(result.to_dict()), encoding="utf-8")
    assert main(["report", str(saved)]) == 0
    assert (tmp_path / "repair.html").read_text(encoding="utf-8") == page


SCREENSHOTS = Path(__file__).resolve().parent.parent / "build" / "screenshots"
SVG_WIDTHS = "[...document.querySelectorAll('svg')].map(s => s.getBoundingClientRect().width)"


def chromium() -> str:
    """The system Chromium for the browser test, or a skip that says what is missing."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip("no Chromium on PATH (Debian: apt-get install chromium); .ci/run installs it")


def test_every_page_renders_in_headless_chromium_without_errors(tmp_path: Path, dead_report) -> None:
    """Faulty and healthy diagnoses, a repair and a monitor run, loaded in a real browser: no console error, no
    dialog (the hostile layer name never runs), every plot laid out, the key text on the page; screenshots land in
    build/screenshots for a human to look at."""
    executable = chromium()
    from playwright.sync_api import sync_playwright

    x, y = digits()
    torch.manual_seed(0)
    healthy = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    model = dead_layer_model()
    pages = {
        "faulty": (dead_report.to_html(), dead_report.findings[0].cause),
        "healthy": (
            torchmedic.diagnose(healthy, loader(x, y), nn.CrossEntropyLoss(), adam(healthy), budget_s=20).to_html(),
            "Healthy: no finding",
        ),
        "repair": (
            torchmedic.repair(model, loader(x, y), nn.CrossEntropyLoss(), adam(model), budget_s=40).to_html(),
            "Repaired",
        ),
        "monitor": (monitored_run_page(tmp_path), "optim.missing_zero_grad"),
    }
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            for name, (html, key) in pages.items():
                path = tmp_path / f"{name}.html"
                path.write_text(html, encoding="utf-8")
                page = browser.new_page(viewport={"width": 1100, "height": 900})
                problems: list[str] = []
                page.on("console", lambda m, p=problems: p.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e, p=problems: p.append(str(e)))
                page.on("dialog", lambda d, p=problems: (p.append(f"dialog: {d.message}"), d.dismiss()))
                page.goto(path.as_uri())
                widths = page.evaluate(SVG_WIDTHS)
                assert not problems, (name, problems)
                assert widths and min(widths) > 100, (name, widths)
                assert key in page.inner_text("body"), name
                page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
                page.close()
        finally:
            browser.close()


def monitored_run_page(log_dir: Path) -> str:
    """The page of a monitored loop that never calls zero_grad (the monitor names it within 24 steps)."""
    x, y = digits()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    with Monitor(model, optimizer, log_dir=log_dir, every=2) as monitor:
        for step in range(24):
            batch = slice(32 * step, 32 * step + 32)
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
            monitor.log(loss=loss)
    assert [f.cause for f in monitor.findings] == ["optim.missing_zero_grad"]
    output = log_dir / "run.html"
    assert main(["report", str(log_dir), "-o", str(output)]) == 0
    return output.read_text(encoding="utf-8")
