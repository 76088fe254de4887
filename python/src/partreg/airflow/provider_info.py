# SPDX-License-Identifier: MIT
"""The provider's description for Airflow (entry point ``apache_airflow_provider``).

Airflow imports this module while it discovers providers, also inside
``airflow db migrate`` and before its own SDK is set up: it must import
nothing from Airflow (a module importing ``airflow.sdk`` there fails with a
circular import), and nothing heavy. The connection form is described here
declaratively (``conn-fields``, ``ui-field-behaviour``), so that Airflow
builds it without importing the hook.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from .connection import CONN_TYPE

_INTEGRATION = "partreg"


def _version() -> str:
    try:
        return metadata.version("partreg")
    except metadata.PackageNotFoundError:  # imported from a source tree
        return "0.0.0"


def _text(label: str, description: str, *, secret: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if secret:
        schema["format"] = "password"
    return {"label": label, "description": description, "schema": schema}


def get_provider_info() -> dict[str, Any]:
    """What ``airflow providers list`` shows, and where the hook, sensor,
    operator and triggers live."""
    modules = {
        "hooks": ["partreg.airflow.hooks"],
        "sensors": ["partreg.airflow.sensors"],
        "operators": ["partreg.airflow.operators"],
        "triggers": ["partreg.airflow.triggers"],
    }
    return {
        "package-name": "partreg",
        "name": "partreg",
        "description": (
            "partreg, the partition registry on MQTT: wait until a source's interval is "
            "ready (a deferrable sensor), run a task under a partition's lock, and turn "
            "partitions that become ready into asset events."
        ),
        "versions": [_version()],
        "integrations": [{"integration-name": _INTEGRATION, "tags": ["protocol"]}],
        **{
            kind: [{"integration-name": _INTEGRATION, "python-modules": mods}]
            for kind, mods in modules.items()
        },
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": "partreg.airflow.hooks.PartregHook",
                "hook-name": "partreg",
                "conn-fields": {
                    "token": _text(
                        "Token",
                        "The source's or the provider's token (producers only; "
                        "waiting needs none).",
                        secret=True,
                    ),
                    "token_file": _text("Token file", "A file whose first line is the token."),
                    "tls": {
                        "label": "TLS",
                        "description": "Connect with TLS (also implied by an mqtts:// host "
                        "or a CA or certificate file).",
                        "schema": {"type": ["boolean", "null"], "default": False},
                    },
                    "cafile": _text("CA file", "The CA to verify the broker with (path)."),
                    "certfile": _text("Client certificate", "For TLS client auth (path)."),
                    "keyfile": _text("Client key", "The client certificate's key (path)."),
                    "prefix": _text("Topic prefix", "partreg/v1 unless the agent uses another."),
                    "mqtt_version": {
                        "label": "MQTT version",
                        "schema": {"type": ["string", "null"], "enum": ["5", "3.1.1", None]},
                    },
                    "timeout": {
                        "label": "Timeout (s)",
                        "description": "To connect, and for each reply.",
                        "schema": {"type": ["number", "null"], "default": 10},
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema"],
                    "relabeling": {
                        "host": "Broker (host or mqtt[s]://host:port URL)",
                        "login": "MQTT user",
                        "password": "MQTT password (without a user: the token)",
                    },
                    "placeholders": {"host": "mqtt://127.0.0.1:1883", "port": "1883"},
                },
            }
        ],
    }
