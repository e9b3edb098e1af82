// Starts Swagger UI on /docs from this machine's files: no validator badge (it would ask
// another host), the schema from this service.
window.ui = window.SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  validatorUrl: null,
  deepLinking: true,
  tryItOutEnabled: false,
});
