"""What every request handler needs, built once by ``app.create_app`` and kept on ``app.state.gateway``."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from airflow_identity_provider.luigi_gateway.identity import Authenticator, GatewayContext
from airflow_identity_provider.luigi_gateway.proxy import LuigidClient
from airflow_identity_provider.luigi_gateway.settings import GatewaySettings
from airflow_identity_provider.luigi_gateway.task_ownership import TaskClaims
from airflow_identity_provider.luigi_gateway.worker_identity import WorkerBindings


@dataclass
class Gateway:
    settings: GatewaySettings
    ctx: GatewayContext
    authenticator: Authenticator
    luigid: LuigidClient
    bindings: WorkerBindings
    claims: TaskClaims


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway
