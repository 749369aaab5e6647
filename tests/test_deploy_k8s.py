"""The Kubernetes manifests in deploy/, checked against the official object models.

Two independent references: the official JSON schema of the Kubernetes API (strict: unknown
fields are errors; package ``kubernetes-validate``) and the official Python client's models
(``ApiClient().deserialize``, whose round trip must give the manifest back unchanged). Then
what ties them to pricelab: the command parses in the real CLI, the configs load with the
real loaders, and the image's user and paths match the Dockerfile.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from pricelab.cli.app import app

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
K8S_VERSIONS = ("1.31.0", "1.37.0")  # oldest supported (podFailurePolicy is GA) and newest
MODELS = {
    "CronJob": "V1CronJob",
    "ConfigMap": "V1ConfigMap",
    "Secret": "V1Secret",
    "PersistentVolumeClaim": "V1PersistentVolumeClaim",
    "ServiceAccount": "V1ServiceAccount",
}

kubernetes = pytest.importorskip("kubernetes", reason="needs pricelab[deploy-test]")
kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="needs pricelab[deploy-test]"
)


def manifests() -> dict[str, dict[str, Any]]:
    """Every Kubernetes object in deploy/ by kind (one object per file)."""
    out = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert len(docs) == 1, path
        assert docs[0]["kind"] not in out, path
        out[docs[0]["kind"]] = docs[0]
    return out


class _Response:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.data = json.dumps(doc)


def _deserialize(client: Any, doc: dict[str, Any], model: str) -> Any:
    """``ApiClient.deserialize`` across client versions (text since v34, a response before)."""
    if "response_text" in inspect.signature(client.deserialize).parameters:
        return client.deserialize(json.dumps(doc), model, "application/json")
    return client.deserialize(_Response(doc), model)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_match_the_official_schema_strictly(version: str) -> None:
    found = manifests()
    assert set(found) == set(MODELS)
    for kind, doc in found.items():
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(
                f"{kind} invalid for Kubernetes {version}: {exc.message} at "
                f"{'.'.join(str(p) for p in exc.path)}"
            )


def test_schema_check_can_fail() -> None:
    """A misspelled field and a wrong type are refused (so the test above means something)."""
    doc = manifests()["CronJob"]
    bad = json.loads(json.dumps(doc))
    bad["spec"]["concurrencyPolicyy"] = "Forbid"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[0], strict=True)
    bad = json.loads(json.dumps(doc))
    bad["spec"]["jobTemplate"]["spec"]["backoffLimit"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[0], strict=True)


def test_manifests_round_trip_through_the_python_client_models() -> None:
    client = kubernetes.client.ApiClient()
    for kind, doc in manifests().items():
        obj = _deserialize(client, doc, MODELS[kind])
        assert type(obj).__name__ == MODELS[kind]
        # the models drop unknown fields: an unchanged round trip means every field is known
        assert client.sanitize_for_serialization(obj) == doc, kind
    typo = json.loads(json.dumps(manifests()["CronJob"]))
    typo["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolcy"] = "Never"
    obj = _deserialize(client, typo, "V1CronJob")
    assert client.sanitize_for_serialization(obj) != typo


def _container() -> dict[str, Any]:
    pod = manifests()["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return container


def test_cronjob_runs_the_pipeline_command_that_the_cli_accepts() -> None:
    container = _container()
    assert "command" not in container  # the image's entry point is `pricelab`
    args = container["args"]
    assert args == ["pipeline", "run", "--config", "/config/pipeline.yaml", "--json"]
    group = typer.main.get_command(app)
    ctx = group.context_class(group)
    name, cmd, rest = group.resolve_command(ctx, args)
    while hasattr(cmd, "resolve_command"):
        name, cmd, rest = cmd.resolve_command(cmd.context_class(cmd, parent=ctx), rest)
    params = cmd.make_context(name, list(rest)).params
    assert str(params["config"]) == "/config/pipeline.yaml" and params["json"] is True


def test_cronjob_policies_for_a_single_writer_batch_job() -> None:
    cron = manifests()["CronJob"]
    job = cron["spec"]["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert pod["restartPolicy"] == "Never"  # podFailurePolicy requires it
    (fail_rule,) = [r for r in job["podFailurePolicy"]["rules"] if r["action"] == "FailJob"]
    assert fail_rule["onExitCodes"] == {
        "containerName": "pricelab",
        "operator": "In",
        "values": [1, 2],
    }
    (retry_rule,) = [r for r in job["podFailurePolicy"]["rules"] if r["action"] == "Count"]
    assert retry_rule["onExitCodes"]["values"] == [75]  # storage unavailable: retried
    assert job["backoffLimit"] >= 2
    res = _container()["resources"]
    assert {"cpu", "memory"} <= set(res["requests"]) and "memory" in res["limits"]
    mem = kubernetes.utils.parse_quantity
    assert mem(res["requests"]["memory"]) <= mem(res["limits"]["memory"])
    tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
    assert mem(tmp["emptyDir"]["sizeLimit"]) <= mem(res["limits"]["ephemeral-storage"])


def test_cronjob_runs_as_the_dockerfiles_user_without_privileges() -> None:
    pod = manifests()["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    user = re.search(r"(?m)^USER (\d+):(\d+)$", (REPO / "Dockerfile").read_text())
    assert user is not None
    sc = pod["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert (str(sc["runAsUser"]), str(sc["runAsGroup"])) == user.groups()
    csc = _container()["securityContext"]
    assert csc["allowPrivilegeEscalation"] is False and csc["readOnlyRootFilesystem"] is True
    assert csc["capabilities"]["drop"] == ["ALL"]
    # a read-only root needs writable /tmp (downloads, matplotlib) and /data (the database)
    mounts = {m["mountPath"]: m for m in _container()["volumeMounts"]}
    assert {"/tmp", "/data", "/config"} <= set(mounts) and mounts["/config"]["readOnly"]
    env = {e["name"]: e.get("value") for e in _container()["env"]}
    assert env["PRICELAB_DB"].startswith("/data/")
    assert f"PRICELAB_DB={env['PRICELAB_DB']}" in (REPO / "Dockerfile").read_text()


def test_references_between_objects_resolve() -> None:
    found = manifests()
    pod = found["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    vols = {v["name"]: v for v in pod["volumes"]}
    cm = vols["config"]["configMap"]
    assert cm["name"] == found["ConfigMap"]["metadata"]["name"]
    assert {i["key"] for i in cm["items"]} <= set(found["ConfigMap"]["data"])
    claim = vols["state"]["persistentVolumeClaim"]["claimName"]
    assert claim == found["PersistentVolumeClaim"]["metadata"]["name"]
    assert pod["serviceAccountName"] == found["ServiceAccount"]["metadata"]["name"]
    (ref,) = _container()["envFrom"]
    assert ref["secretRef"]["name"] == found["Secret"]["metadata"]["name"]
    # the example Secret holds placeholders only, under the libraries' own variable names
    data = found["Secret"]["stringData"]
    assert set(data.values()) == {"REPLACE_ME"}
    from pricelab.urls import SECRET_ENV

    assert "AZURE_STORAGE_ACCOUNT_KEY" in SECRET_ENV and set(data) & set(SECRET_ENV)


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    kust = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    files = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert set(kust["resources"]) == files
    (image,) = kust["images"]
    assert _container()["image"].split(":")[0] == image["name"]


def test_mounted_configs_load_with_pricelab_loaders() -> None:
    from pricelab.optimize.constraints import loads_constraints
    from pricelab.pipeline.config import validate_config

    data = manifests()["ConfigMap"]["data"]
    cfg = validate_config(yaml.safe_load(data["pipeline.yaml"]), "pipeline.yaml", Path("/config"))
    assert str(cfg["optimize"]["constraints"]) == "/config/constraints.yaml"
    assert set(cfg["inputs"]["files"]) == {"sales", "items", "costs", "markets", "inventory"}
    cons = loads_constraints(data["constraints.yaml"], source="constraints.yaml")
    assert cons is not None
