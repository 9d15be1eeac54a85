"""OpenAPI: DeviceTokenAuthentication as `Authorization: Token <token>` or `Bearer <token>`."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object


class DeviceTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.DeviceTokenAuthentication"
    name = ["tokenAuth", "bearerAuth"]

    def get_security_requirement(self, auto_schema):
        return [{name: []} for name in self.name]  # a list: either one (OpenAPI's OR)

    def get_security_definition(self, auto_schema):
        token = build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix=self.target.authenticate_header(None)
        )
        bearer = {
            "type": "http",
            "scheme": "bearer",
            "description": "The same device token as `Authorization: Bearer <token>`.",
        }
        return [token, bearer]
