# SPDX-License-Identifier: MIT
"""partreg.airflow: the Airflow provider of partreg (Airflow 3, ``airflow.sdk``).

Installed with the ``[airflow]`` extra and registered through the
``apache_airflow_provider`` entry point (:mod:`partreg.airflow.provider_info`),
so ``airflow providers list`` shows it and the ``partreg`` connection type
appears in the UI.

- :class:`~partreg.airflow.hooks.PartregHook`: a configured
  :class:`partreg.Client` / :class:`partreg.AsyncClient` from a connection
  (``partreg_default``; its fields: :mod:`partreg.airflow.connection`).
- :class:`~partreg.airflow.sensors.PartitionReadySensor`: waits until an
  interval of a source is ready, deferred by default
  (:class:`~partreg.airflow.triggers.PartitionReadyTrigger` follows the
  retained summary in the triggerer: no worker slot, no polling).
- :class:`~partreg.airflow.operators.PartitionRunOperator` and
  :func:`~partreg.airflow.operators.partition_lock` (for ``@task``): run code
  under a partition's lock (session, Last Will, renewals; unlock with
  metadata, or fail with the exception's text).
- :class:`~partreg.airflow.triggers.PartitionEventTrigger`: for an
  ``AssetWatcher``, an asset event for every partition of a source that
  becomes ready.

This module imports nothing from Airflow (Airflow imports the package while
it discovers providers); the names above are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .hooks import PartregHook
    from .operators import PartitionRunOperator, partition_lock
    from .sensors import PartitionReadySensor
    from .triggers import PartitionEventTrigger, PartitionReadyTrigger

_EXPORTS = {
    "PartregHook": ".hooks",
    "PartitionReadySensor": ".sensors",
    "PartitionRunOperator": ".operators",
    "partition_lock": ".operators",
    "PartitionReadyTrigger": ".triggers",
    "PartitionEventTrigger": ".triggers",
}

__all__ = [
    "PartregHook",
    "PartitionReadySensor",
    "PartitionRunOperator",
    "partition_lock",
    "PartitionReadyTrigger",
    "PartitionEventTrigger",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
