import AviaryCore
import AviaryPostgres
import Foundation
import Hummingbird
import Mustache

/// The dashboard at `/ui` (docs/dashboard.md): server-rendered pages over the same stores and
/// commands as the REST API. Pages need a session (`DashboardSession`); every form carries the
/// session's `csrf_token`, and a POST without it is refused with 403 before anything runs.
struct DashboardController {
    let templates: MustacheLibrary
    let stylesheet: String
    let database: AviaryDatabase
    let keys: KeyAuthenticator
    let reports: Reports
    /// A button runs exactly its REST route's command, through the same `Changes`.
    let changes: Changes
    /// The stored objects this server cannot read, for the banner.
    let unreadable: @Sendable () -> [UnreadableObject]

    static let actions: Set<String> = ["start", "pause", "resume", "approve", "rollback", "stop"]

    func addRoutes(to router: Router<AviaryRequestContext>) {
        router.get("ui") { _, _ in Self.redirect("/ui/experiments") }
        router.get("ui/login", use: loginForm)
        router.post("ui/login", use: login)
        router.get("ui/logout", use: logout)
        router.post("ui/logout", use: logout)
        router.get("ui/static/aviary.css") { [stylesheet] _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "max-age=3600"],
                body: .init(byteBuffer: ByteBuffer(string: stylesheet)))
        }
        let signedIn = router.group("ui").add(middleware: DashboardSessionMiddleware(keys: keys))
        // Pages show reports: the reports' deadline; a button's command gets a request's.
        let pages = signedIn.group().add(middleware: DatabaseDeadlineMiddleware(limit: Reports.deadline))
        pages.get("experiments", use: list)
        pages.get("experiments/:key", use: experiment)
        pages.get("experiments/:key/report.csv", use: csv)
        pages.get("experiments/:key/:action", use: confirm)
        pages.get("audit", use: audit)
        signedIn.group().add(middleware: DatabaseDeadlineMiddleware()).post("experiments/:key/:action", use: act)
    }

    // MARK: Login

    @Sendable func loginForm(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        var rng = SystemRandomNumberGenerator()
        let token = APIKeySecret.randomHex(bytes: 16, using: &rng)
        var response = render("login", ["csrf": token, "error": request.uri.queryParameters.get("failed") != nil])
        response.headers[.setCookie] = DashboardSession.setCookie(DashboardSession.loginCookieName, token, maxAge: 3600, request: request)
        return response
    }

    @Sendable func login(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let form = try await DashboardForm.read(request)
        guard let expected = request.headers.cookie(DashboardSession.loginCookieName), !expected.isEmpty, let sent = form["csrf_token"],
            APIKeySecret.constantTimeEquals(sent, expected)
        else { return Self.forbidden() }
        // Only admin keys open the dashboard; a client key is refused like an unknown one.
        guard let presented = form["key"]?.trimmedOWS, let key = keys.authenticate(presented), key.role == .admin else {
            return Self.redirect("/ui/login?failed=1")
        }
        let session = DashboardSession(key: key)
        var response = Self.redirect("/ui/experiments")
        response.headers[.setCookie] = DashboardSession.setCookie(
            DashboardSession.cookieName, session.cookieValue(key), maxAge: Int(DashboardSession.lifetime), request: request)
        return response
    }

    @Sendable func logout(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        var response = Self.redirect("/ui/login")
        response.headers[.setCookie] = DashboardSession.setCookie(DashboardSession.cookieName, "", maxAge: 0, request: request)
        return response
    }

    // MARK: Pages

    @Sendable func list(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let status = request.uri.queryParameters.get("status").flatMap(ExperimentStatus.init(rawValue:))
        let experiments = try await database.experiments.list(status: status, includeArchived: false)
        let exposed = try await database.exposures.unitsPerVariant()
        let filters = [["label": "all", "href": "/ui/experiments", "current": status == nil]]
            + ExperimentStatus.allCases.map { ["label": $0.rawValue.replacingOccurrences(of: "_", with: " "), "href": "/ui/experiments?status=\($0.rawValue)", "current": status == $0] }
        return render("experiments", page(context, title: "Experiments", [
            "experiments": experiments.map { DashboardPages.listRow($0, exposed: exposed[$0.key] ?? [:]) }, "filters": filters,
            "empty": experiments.isEmpty,
        ]))
    }

    @Sendable func experiment(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try context.existingKey(of: "experiment")
        let by = request.uri.queryParameters.get("by")
        let dimension = ["model", "app_version"].contains(by ?? "") ? by! : "variant"
        let experiment = try await database.experiments.get(key)
        let report = try await reports.report(of: experiment, query: ReportQuery.parse(by: dimension, from: nil, to: nil).get())
        let d = experiment.definition
        let history = report.rollout?.history ?? []
        let notices = d.rollout == nil ? [] : try await database.notices.list(experiment: key)
        let actions = DashboardPages.actions(experiment)
        let switches = [("variant", "by variant"), ("model", "by model"), ("app_version", "by app version")].map {
            ["label": $0.1, "href": "/ui/experiments/\(key)?by=\($0.0)", "current": $0.0 == dimension]
        }
        return render("experiment", page(context, title: key, [
            "key": key, "name": d.name, "description": d.description, "hasDescription": !d.description.isEmpty, "status": experiment.status.rawValue, "unit": d.unit.rawValue,
            "revision": experiment.revision, "updated": DashboardFormat.time(experiment.updatedAt),
            "rules": DashboardPages.rulesInWords(d),
            "variants": d.variants.map { ["key": $0.key, "value": $0.value.canonicalString(), "control": $0.key == d.control] },
            "exposed": report.exposedUnits.map { ["variant": $0.variant, "units": $0.units] },
            "multiple": report.multipleExposures, "multipleWarning": report.multipleExposuresWarning,
            "srm": DashboardFormat.pValue(report.srm.pValue), "srmWarning": report.srmWarning, "srmNote": report.srm.note ?? "",
            "switches": switches, "csv": "/ui/experiments/\(key)/report.csv?by=\(dimension)",
            "metrics": DashboardPages.metrics(report), "noMetrics": report.groups.first?.metrics.isEmpty ?? true,
            "rollout": DashboardPages.rolloutInWords(experiment) ?? "", "hasRollout": d.rollout != nil, "history": DashboardPages.history(history),
            "notices": DashboardPages.notices(notices), "hasNotices": !notices.isEmpty,
            "actions": actions, "hasActions": !actions.isEmpty,
        ]))
    }

    @Sendable func csv(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try context.existingKey(of: "experiment")
        return Response.csv(try await reports.report(key: key, query: ReportQuery(request)))
    }

    @Sendable func audit(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let experiment = request.uri.queryParameters.get("experiment").flatMap { Key.isValid($0) ? $0 : nil }
        let entries = try await database.audit.list(experiment: experiment, before: nil, limit: 200)
        var values: [String: Any] = ["entries": entries.map(DashboardPages.auditRow), "empty": entries.isEmpty]
        if let experiment { values["experiment"] = experiment }
        return render("audit", page(context, title: "Audit log", values))
    }

    // MARK: Actions

    /// The confirmation page of an action: the question, and the form that does it.
    @Sendable func confirm(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try context.existingKey(of: "experiment")
        let action = try context.parameters.require("action")
        guard Self.actions.contains(action) else { throw AviaryError.notFound("no dashboard action \"\(action.prefix(40))\"") }
        let experiment = try await database.experiments.get(key)
        return render("confirm", page(context, title: "\(action) \(key)", [
            "key": key, "action": action, "stop": action == "stop", "reasoned": ["pause", "rollback"].contains(action),
            "variants": experiment.definition.variants.map { ["key": $0.key] },
        ]))
    }

    /// Runs an action through the same command as its REST route, as the session's key.
    @Sendable func act(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let form = try await DashboardForm.read(request)
        guard let session = context.dashboardSession, let key = context.apiKey, session.accepts(csrfToken: form["csrf_token"], key: key) else {
            return Self.forbidden()
        }
        let experimentKey = try context.existingKey(of: "experiment")
        let action = try context.parameters.require("action")
        let command: ExperimentCommand
        let reason = form["reason"].flatMap { $0.isEmpty ? nil : String($0.prefix(1_000)) }
        switch action {
        case "approve": command = .approveRollout
        case let name:
            guard let lifecycle = LifecycleAction(rawValue: name) else { throw AviaryError.notFound("no dashboard action \"\(name.prefix(40))\"") }
            let winner = form["winner"].flatMap { $0.isEmpty ? nil : $0 }
            command = .lifecycle(lifecycle, winner: lifecycle == .stop ? winner : nil, reason: reason, ifMatch: nil)
        }
        let _: Experiment = try await changes.experiment(command, key: experimentKey, by: .key(key.id))
        return Self.redirect("/ui/experiments/\(experimentKey)")
    }

    // MARK: Rendering

    /// The templates and the stylesheet, from the module's resources.
    static func loadAssets() async throws -> (MustacheLibrary, String) {
        guard let templates = Bundle.module.url(forResource: "Templates", withExtension: nil),
            let css = Bundle.module.url(forResource: "aviary", withExtension: "css", subdirectory: "Static")
        else { throw DashboardAssetsMissing() }
        return (try await MustacheLibrary(directory: templates.path), try String(contentsOf: css, encoding: .utf8))
    }

    struct DashboardAssetsMissing: Error, CustomStringConvertible {
        var description: String { "the dashboard's templates are not beside the executable (AviaryServer's resources)" }
    }

    /// What every page's header needs: the session's CSRF token for the logout form.
    /// Also the banner naming the stored objects this server cannot read.
    func page(_ context: AviaryRequestContext, title: String, _ values: [String: Any]) -> [String: Any] {
        var values = values
        values["title"] = title
        let unreadable = unreadable()
        if !unreadable.isEmpty {
            values["hasUnreadable"] = true
            values["unreadable"] = unreadable.map { ["kind": $0.kind.rawValue, "key": $0.key, "problem": $0.problem] }
        }
        if let session = context.dashboardSession, let key = context.apiKey {
            values["csrf"] = session.csrfToken(key)
            values["signedIn"] = true
            values["actor"] = key.name.isEmpty ? key.id : key.name
        }
        return values
    }

    func render(_ template: String, _ values: [String: Any]) -> Response {
        let html = templates.render(values, withTemplate: template) ?? "template \(template) is missing"
        return Response(
            status: .ok,
            headers: [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                .contentSecurityPolicy: "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'",
            ],
            body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }

    static func forbidden() -> Response {
        Response(
            status: .forbidden, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: "the form's csrf_token is missing or not this session's; nothing was changed\n")))
    }
}

/// Pages need a session: without one, the browser is sent to the login.
struct DashboardSessionMiddleware: RouterMiddleware {
    typealias Context = AviaryRequestContext
    let keys: KeyAuthenticator

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let (session, key) = DashboardSession.verify(request, keys: keys) else { return DashboardController.redirect("/ui/login") }
        var context = context
        context.dashboardSession = session
        context.apiKey = key
        return try await next(request, context)
    }
}

/// An `application/x-www-form-urlencoded` body of at most 16 KiB.
enum DashboardForm {
    /// The fields of a urlencoded form. A field whose name or value is not UTF-8 text that
    /// PostgreSQL can store (NUL, bytes that decode to nothing) is `400 invalid_request` naming
    /// it, as a JSON body's would be, and changes nothing.
    static func read(_ request: Request) async throws -> [String: String] {
        let buffer = try await request.readBody(upTo: 16 * 1024)
        var fields: [String: String] = [:]
        guard let text = String(validating: buffer.readableBytesView, as: UTF8.self) else {
            throw APIError.invalidRequest([ValidationIssue(path: "form", message: "is not UTF-8 text")])
        }
        var issues: [ValidationIssue] = []
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String? { s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding }
            guard let first = parts.first else { continue }
            guard let name = decode(first), StorableText.isStorable(name) else {
                issues.append(ValidationIssue(path: "form", message: "a field name is not UTF-8 text that can be stored"))
                continue
            }
            let value = parts.count > 1 ? decode(parts[1]) : ""
            guard let value, StorableText.isStorable(value) else {
                issues.append(ValidationIssue(path: String(name.prefix(40)), message: "is not UTF-8 text that can be stored"))
                continue
            }
            fields[name] = value
        }
        guard issues.isEmpty else { throw APIError.invalidRequest(issues) }
        return fields
    }
}
