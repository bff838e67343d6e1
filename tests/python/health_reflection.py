"""Checks a Silta relay with Python's stock gRPC clients: health, then reflection (v1alpha).

Usage: health_reflection.py HOST:PORT CA_PEM CLIENT_PEM CLIENT_KEY
"""
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc


def main() -> int:
    target, ca, cert, key = sys.argv[1:5]
    creds = grpc.ssl_channel_credentials(
        root_certificates=open(ca, "rb").read(),
        private_key=open(key, "rb").read(),
        certificate_chain=open(cert, "rb").read(),
    )
    with grpc.secure_channel(target, creds) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        resp = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=20)
        print("health:", health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status))
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        for response in stub.ServerReflectionInfo(iter([request]), timeout=20):
            for service in response.list_services_response.service:
                print("service:", service.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
