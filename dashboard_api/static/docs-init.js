"use strict";
// Starts the locally served Swagger UI on /openapi.json (no inline script: the CSP forbids it).
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
