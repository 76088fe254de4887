# SPDX-License-Identifier: MIT
"""partreg: the Python client of a partreg agent (partregd).

- :class:`Client` (threads, paho-mqtt) and :class:`AsyncClient` (asyncio,
  aiomqtt): every protocol command by noun (``client.partition.lock(...)``),
  :meth:`Client.wait` until an interval is ready (from the retained summary,
  no polling), and :meth:`Client.partition_lock`, a context manager that runs
  a block under a partition's lock (session, MQTT Last Will, renewals,
  unlock or fail), as ``partreg run`` runs a job.
- :class:`Summary` and :class:`Readiness`: readiness decided locally from a
  retained summary, by the agent's own rule.
- Errors: :class:`PartregError` and its subclasses, by the agent's codes
  (``partreg.errors``).
- Times: datetimes (naive = UTC), dates (midnight UTC) or any text the agent
  accepts; :func:`parse_time` and :func:`format_time` as the agent does.

``partreg.airflow`` (the Airflow provider) is a separate subpackage, installed
with the ``[airflow]`` extra.
"""

from ._options import Options
from ._protocol import Reply
from ._time import TimeLike, format_time, parse_time
from .aio import AsyncClient, AsyncPartitionLock
from .client import Client, PartitionLock, Subscription
from .errors import (
    BlockerFailed,
    BrokerUnreachable,
    Conflict,
    Forbidden,
    InvalidInput,
    LockLost,
    NotFound,
    PartregError,
    ServerError,
    Timeout,
    Unauthorized,
    UnsupportedFormat,
)
from .summary import Blocker, Readiness, Summary, SummaryError

__version__ = "0.2.0"

__all__ = [
    "AsyncClient",
    "AsyncPartitionLock",
    "Blocker",
    "BlockerFailed",
    "BrokerUnreachable",
    "Client",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "LockLost",
    "NotFound",
    "Options",
    "PartitionLock",
    "PartregError",
    "Readiness",
    "Reply",
    "ServerError",
    "Subscription",
    "Summary",
    "SummaryError",
    "TimeLike",
    "Timeout",
    "Unauthorized",
    "UnsupportedFormat",
    "__version__",
    "format_time",
    "parse_time",
]
