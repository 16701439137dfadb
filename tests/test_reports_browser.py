"""The HTML reports opened in headless Chromium: every image renders, no console error,
and the saved screenshot shows them (the demo's, the road and the meeting scenario's).

Marked ``browser``: deselect with ``-m "not browser"`` where no Chromium is installed
(``make setup`` installs Debian's ``chromium``; under CI a missing browser is a failure).
"""

import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
from headless_browser import check_page, find_chromium
from PIL import Image

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", autouse=True)
def chromium():
    path = find_chromium()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no chromium on PATH: make setup installs it")
        pytest.skip("no chromium on PATH (make setup installs it)")
    return path


def assert_report_renders(html: Path, shot: Path) -> list[dict]:
    """Load ``html``; fail on a broken image or a console error; inspect the screenshot."""
    expected = len(re.findall(r"<img\b", html.read_text()))
    page = check_page(html)
    shot.write_bytes(page.screenshot_png)
    assert page.errors == [], page.errors
    assert page.broken_images == [], page.broken_images
    assert len(page.images) == expected > 0
    pixels = np.asarray(Image.open(io.BytesIO(page.screenshot_png)).convert("L"), float)
    assert pixels.std() > 10 and (pixels < 200).mean() > 0.02, "screenshot is blank"
    for img in page.images:  # each image is on the screenshot, not a blank box
        x, y, w, h = (round(v) for v in img["box"])
        assert w > 8 and h > 8, img
        region = pixels[y:y + h, x:x + w]
        assert region.size and region.std() > 3, f"{img['src']} shows nothing in the screenshot"
    return page.images


def test_headless_check_catches_a_broken_image_and_a_console_error(tmp_path):
    Image.new("RGB", (40, 30), (200, 30, 30)).save(tmp_path / "ok.png")
    (tmp_path / "bad.html").write_text(
        "<!doctype html><img src='ok.png'><img src='missing.png'>"
        "<script>console.error('boom')</script>")
    page = check_page(tmp_path / "bad.html")
    assert page.broken_images == ["missing.png"]
    assert any("boom" in e for e in page.errors)
    assert any("ERR_FILE_NOT_FOUND" in e for e in page.errors)
    with pytest.raises(AssertionError):
        assert_report_renders(tmp_path / "bad.html", tmp_path / "bad.png")


def test_demo_report_renders(wheel_demo, tmp_path):
    _, demo, _ = wheel_demo
    images = assert_report_renders(demo / "report.html", tmp_path / "demo.png")
    assert {i["src"].split("/")[0] for i in images} == {"fmnist", "photos", "phy"}


def test_road_report_renders(road_tiny_checkpoints, tmp_path):
    from gsc_cli.root import main

    out = tmp_path / "road"
    assert main(["scenario", "road", "--scenes", "2", "--snr", "0,30", "--rho", "1/6",
                 "--checkpoints", road_tiny_checkpoints, "--out", str(out)]) == 0
    assert_report_renders(out / "report.html", tmp_path / "road.png")


def test_meeting_report_renders(tmp_path):
    from gsc_semantic.scenarios.common import parse_link
    from gsc_semantic.scenarios.meeting import run_meeting
    from gsc_semantic.scenarios.meeting_budget import GscSetting

    run_meeting(parse_link("sim"), "awgn", [0.0, 20.0], str(tmp_path), seed=0, frames=3,
                rho=1 / 3, echo=lambda *_: None, clip="astronaut",
                equal_nme_settings=(GscSetting(6, 0.1, 2, 30),))
    assert_report_renders(tmp_path / "report.html", tmp_path / "meeting.png")
