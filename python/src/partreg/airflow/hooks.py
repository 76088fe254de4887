# SPDX-License-Identifier: MIT
"""PartregHook: partreg clients configured from an Airflow connection.

The connection's fields are read by :mod:`partreg.airflow.connection`. In a
task use the synchronous methods; in a trigger (the triggerer's event loop)
the ``a``-prefixed ones, which fetch the connection without blocking the
loop.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from .. import AsyncClient, Client, Options, PartregError
from .connection import CONN_TYPE, DEFAULT_CONN_ID, options_from_connection


class PartregHook(BaseHook):
    """Clients of the partreg agent that connection ``partreg_conn_id``
    names (``partreg_default`` by default)::

        with PartregHook().get_conn() as client:
            client.wait("sales", start, end, timeout=600)

    ``get_conn()`` returns a connected :class:`partreg.Client` (close it, or
    use it in a ``with``); ``aget_async_client()`` an unconnected
    :class:`partreg.AsyncClient` (``async with`` it). A connection that does
    not make a client raises :class:`~partreg.errors.InvalidInput` naming
    it; an unreachable broker :class:`~partreg.errors.BrokerUnreachable`.
    """

    conn_name_attr = "partreg_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "partreg"

    def __init__(self, partreg_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.partreg_conn_id = partreg_conn_id

    def get_options(self) -> Options:
        """The client options the connection describes."""
        return options_from_connection(self.get_connection(self.partreg_conn_id))

    async def aget_options(self) -> Options:
        """:meth:`get_options` for async code (the triggerer)."""
        return options_from_connection(await self.aget_connection(self.partreg_conn_id))

    def get_conn(self) -> Client:
        """A connected :class:`partreg.Client`; the caller closes it."""
        return Client(options=self.get_options())

    def get_async_client(self) -> AsyncClient:
        """An :class:`partreg.AsyncClient`, not yet connected (``async with``
        it). Fetches the connection synchronously: in the triggerer use
        :meth:`aget_async_client`."""
        return AsyncClient(options=self.get_options())

    async def aget_async_client(self) -> AsyncClient:
        """:meth:`get_async_client` without blocking the event loop."""
        return AsyncClient(options=await self.aget_options())

    def test_connection(self) -> tuple[bool, str]:
        """Connect and ask the agent for one source: what the UI's Test
        button does."""
        try:
            with self.get_conn() as client:
                client.source.list(limit=1)
        except PartregError as e:
            return False, str(e)
        return True, f"partregd answered through {client.options.broker}"
