import HTTPServer

/// The admin web page, `GET /admin`: plain HTML, CSS and JavaScript built into the binary (so a
/// container needs nothing beside it), calling the admin API with the admin token.
///
/// The page itself holds no data and needs no token; everything it shows comes from the admin API,
/// which does. Its headers keep it from being framed or from running any script but its own.
enum AdminPage {
    static func register(on router: inout Router) {
        for path in ["/admin", "/admin/"] {
            router.get(path) { _, _ in asset(PackageResources.admin_html, type: "text/html; charset=utf-8") }
        }
        router.get("/admin/assets/admin.js") { _, _ in asset(PackageResources.admin_js, type: "text/javascript; charset=utf-8") }
        router.get("/admin/assets/admin.css") { _, _ in asset(PackageResources.admin_css, type: "text/css; charset=utf-8") }
    }

    private static func asset(_ bytes: [UInt8], type: String) -> HTTPResponse {
        HTTPResponse(
            status: .ok,
            headers: [
                "Content-Type": type,
                "Content-Security-Policy":
                    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
                // A new binary brings a new page: always ask.
                "Cache-Control": "no-cache",
            ], bytes: bytes)
    }
}
