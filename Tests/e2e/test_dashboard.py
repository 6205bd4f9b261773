"""The dashboard as a person sees it (docs/dashboard.md): `scripts/demo` fills a real server,
then headless Chromium logs in through the form and `scripts/screenshots` takes the list and an
experiment page, which must not be blank."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from aviary_e2e import Server, admin, expect

REPO = Path(__file__).resolve().parents[2]


def run(script: str, server: Server, *args: str, timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, AVIARY_URL=server.url, AVIARY_KEY=server.admin_token, AVIARY_DEMO_PAUSE="1")
    return subprocess.run([sys.executable, str(REPO / "scripts" / script), *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_demo_then_screenshots(aviary: Server, tmp_path: Path) -> None:
    demo = run("demo", aviary, timeout=120)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert f"{aviary.url}/ui" in demo.stdout
    api = admin(aviary)
    # A rollout, and a two-model comparison whose by=model report has both models.
    release = expect(api.get("/v1/experiments/chat-release"), 200).json()
    assert release["rollout_state"]["state"] in ("running", "awaiting_approval", "completed"), release["rollout_state"]
    by_model = expect(api.get("/v1/experiments/model-eval/report", params={"by": "model"}), 200).json()
    assert {g["model"] for g in by_model["groups"]} >= {"gpt-4", "qwen-max"}, by_model["groups"]

    shots = run("screenshots", aviary, str(tmp_path), "model-eval", timeout=180)
    assert shots.returncode == 0, shots.stdout + shots.stderr
    for name in ("experiments.png", "experiment.png"):
        png = tmp_path / name
        assert png.exists() and png.stat().st_size > 10_000, name
