"""Cost records name the device that ran the job: the CPU model, not the architecture (issue 15)."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest
import torch

from xstilts import accounting


@pytest.fixture(autouse=True)
def _fresh_cache():
    accounting.cpu_model.cache_clear()
    yield
    accounting.cpu_model.cache_clear()


def test_cpu_record_names_the_cpu_model_from_proc_cpuinfo():
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists() or "model name" not in cpuinfo.read_text():
        pytest.skip("this system's /proc/cpuinfo has no model name")
    model = next(line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name"))
    info = accounting.device_info(torch.device("cpu"))
    assert info == {"device": model, "device_kind": "cpu", "device_count": 1}
    assert info["device"] != platform.machine()


def test_cpu_record_falls_back_to_the_architecture_without_a_model_name(tmp_path, monkeypatch):
    arm = tmp_path / "cpuinfo"
    arm.write_text("processor\t: 0\nBogoMIPS\t: 50.00\nCPU part\t: 0xd0c\n\n")
    real = Path.read_text
    monkeypatch.setattr(Path, "read_text",
                        lambda self, *a, **k: real(arm if str(self) == "/proc/cpuinfo" else self, *a, **k))
    assert accounting.device_info(torch.device("cpu"))["device"] == (platform.processor() or platform.machine())
