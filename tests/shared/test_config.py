"""Configuration: substitution, typed validation, and a clear stop on a bad setting."""
import os
import subprocess
import sys

import pytest

from crm_shared.config import ConfigError, ServiceSettings, load_settings, substitute
from crm_shared.layout import ROOT


def test_substitution_uses_environment_then_default():
    env = {"A": "x"}
    assert substitute("${A:1}-${B:2}-${C:}", env) == "x-2-"


def test_missing_variable_without_default_is_named():
    with pytest.raises(ConfigError, match="NEEDED"):
        substitute("token: ${NEEDED}", {})


def test_malformed_setting_is_named(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("SERVICE_NAME: x\nAMQP_URI: amqp://h/\nMETRICS_PORT: ${PORT:9100}\n"
                   "RPC_TIMEOUT_SECONDS: 5\nLOG_LEVEL: INFO\n")
    settings, config = load_settings(ServiceSettings, cfg, {})
    assert settings.METRICS_PORT == 9100 and config["METRICS_PORT"] == 9100
    with pytest.raises(ConfigError, match="METRICS_PORT"):
        load_settings(ServiceSettings, cfg, {"PORT": "not-a-port"})


def test_delays_are_parsed_from_a_list_string(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("SERVICE_NAME: x\nAMQP_URI: amqp://h/\nMETRICS_PORT: 1\nRPC_TIMEOUT_SECONDS: 5\n"
                   "LOG_LEVEL: info\nEVENT_RETRY_DELAYS_SECONDS: ${D:1,5,30}\n")
    settings, _ = load_settings(ServiceSettings, cfg, {})
    assert settings.EVENT_RETRY_DELAYS_SECONDS == [1.0, 5.0, 30.0]
    assert settings.LOG_LEVEL == "INFO"


def test_runner_stops_with_a_message_naming_the_bad_setting():
    env = dict(os.environ, AUTH_METRICS_PORT="ninety", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "crm_shared.runner", "auth"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "configuration error" in proc.stderr and "METRICS_PORT" in proc.stderr


def test_gateway_requires_the_operator_token():
    env = {k: v for k, v in os.environ.items() if k != "CRM_OPERATOR_TOKEN"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-m", "crm_shared.runner", "gateway"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "CRM_OPERATOR_TOKEN" in proc.stderr
