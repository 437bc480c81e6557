// MockServer's tests, JDK only (no JUnit): a plain main that starts the real `messaging-mock`
// binary, runs every test, prints one line per test and exits 1 if any failed. From the
// repository root:
//
//   javac -d /tmp/jvm-test drivers/jvm/*.java drivers/jvm/test/*.java
//   java -cp /tmp/jvm-test MockServerTest              # all tests
//   java -cp /tmp/jvm-test MockServerTest control      # tests whose name contains "control"
//
// The binary: $MESSAGING_MOCK_BIN, else target/debug/messaging-mock of this repository, else
// `messaging-mock` on PATH. Without one the run prints SKIPPED and exits 0, unless CI=true:
// then it fails. Tests that need /bin/sh (fake binaries) skip themselves on Windows.

import messaging.driver.MessagingDriver.Json;
import messaging.driver.MockServer;
import messaging.driver.MockServer.Control;
import messaging.driver.MockServer.ControlException;
import messaging.driver.MockServer.Health;
import messaging.driver.MockServer.Options;
import messaging.driver.MockServer.RequestFilter;
import messaging.driver.MockServer.StartException;

import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.net.http.WebSocketHandshakeException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

public final class MockServerTest {
    private interface Body { void run() throws Exception; }
    private record Test(String name, Body body) {}

    private static final List<Test> TESTS = new ArrayList<>();
    private static void test(String name, Body body) { TESTS.add(new Test(name, body)); }

    private static final Duration WAIT = Duration.ofSeconds(10);
    private static final boolean WINDOWS = File.separatorChar == '\\';
    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();
    // Inline executor, as in examples/drivers/java/Client.java: with the pooled default the JDK
    // can lose a close that arrives right behind a text frame.
    private static final HttpClient WS_HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).executor(Runnable::run).build();

    static Path bin;
    static final List<Path> TEMP = new ArrayList<>();

    /** A test that cannot run here; counted apart, not as a pass. */
    static final class Skip extends RuntimeException {
        private static final long serialVersionUID = 1L;
        Skip(String why) { super(why); }
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 2 && args[0].equals("--forget")) {
            forgetful(Paths.get(args[1]));
            return;
        }
        String reason = locateBinary();
        if (bin == null) {
            boolean ci = "true".equals(System.getenv("CI"));
            System.out.println((ci ? "FAIL " : "SKIPPED ") + "MockServerTest: " + reason);
            System.exit(ci ? 1 : 0);
        }
        System.out.println("binary: " + bin);
        startTests();
        conversationTests();
        controlTests();
        processTests();
        int failed = 0;
        int skipped = 0;
        int ran = 0;
        long start = System.nanoTime();
        for (Test t : TESTS) {
            if (args.length > 0 && java.util.Arrays.stream(args).noneMatch(t.name()::contains)) continue;
            ran++;
            try {
                t.body().run();
                System.out.println("ok   " + t.name());
            } catch (Skip s) {
                skipped++;
                System.out.println("skip " + t.name() + ": " + s.getMessage());
            } catch (Throwable e) {
                failed++;
                System.out.println("FAIL " + t.name() + ": " + e);
            }
        }
        for (Path p : TEMP) {
            try {
                Files.deleteIfExists(p);
            } catch (Exception ignored) {
                // a temp file left behind
            }
        }
        System.out.printf("%d tests, %d passed, %d failed, %d skipped (%.1f s)%n", ran, ran - failed - skipped,
                failed, skipped, (System.nanoTime() - start) / 1e9);
        System.exit(failed == 0 ? 0 : 1);
    }

    /** Sets {@link #bin}, or returns why there is none. */
    static String locateBinary() {
        String fromEnv = System.getenv(MockServer.BINARY_ENV);
        if (fromEnv != null && !fromEnv.isEmpty()) {
            Path p = Paths.get(fromEnv);
            if (Files.isExecutable(p) && Files.isRegularFile(p)) {
                bin = p.toAbsolutePath();
                return null;
            }
            return "$" + MockServer.BINARY_ENV + "=" + fromEnv + " is not an executable file";
        }
        Path built = repoRoot().resolve("target/debug/messaging-mock" + (WINDOWS ? ".exe" : ""));
        if (Files.isExecutable(built)) {
            bin = built;
            return null;
        }
        try {
            bin = MockServer.findBinary(null, System.getenv());
            return null;
        } catch (StartException e) {
            return "no messaging-mock binary (" + built + " does not exist; " + e.getMessage() + ")";
        }
    }

    /** The repository: the first directory up from here holding drivers/jvm/MockServer.java. */
    static Path repoRoot() {
        for (Path p = Paths.get("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("drivers/jvm/MockServer.java"))) return p;
        }
        return Paths.get("/work/main");
    }

    // --- assertions and helpers --------------------------------------------------------------

    static void check(boolean condition, String what) {
        if (!condition) throw new AssertionError(what);
    }

    static void eq(Object expected, Object actual) {
        if (!java.util.Objects.equals(expected, actual)) {
            throw new AssertionError("expected <" + expected + "> but got <" + actual + ">");
        }
    }

    static <T extends Throwable> T expect(Class<T> type, Body body) throws Exception {
        try {
            body.run();
        } catch (Throwable e) {
            if (type.isInstance(e)) return type.cast(e);
            throw new AssertionError("expected " + type.getSimpleName() + " but got " + e, e);
        }
        throw new AssertionError("expected " + type.getSimpleName() + " but nothing was thrown");
    }

    static Options options() { return new Options().binary(bin); }

    @SuppressWarnings("unchecked")
    static Map<String, Object> obj(Object json) { return (Map<String, Object>) json; }

    @SuppressWarnings("unchecked")
    static List<Object> arr(Object json) { return (List<Object>) json; }

    static Path temp(String suffix, String content) throws Exception {
        Path p = Files.createTempFile("mockserver-test", suffix);
        Files.writeString(p, content);
        TEMP.add(p);
        return p;
    }

    /** An executable /bin/sh script standing in for the binary. */
    static Path script(String body) throws Exception {
        if (WINDOWS) throw new Skip("needs /bin/sh");
        Path p = temp(".sh", "#!/bin/sh\n" + body + "\n");
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwx------"));
        return p;
    }

    static final String FAKE_READY = "{\\\"ready\\\":true,\\\"base_url\\\":\\\"http://127.0.0.1:9\\\"}";

    /** Waits until the process is gone (or fails after 10 s). */
    static void gone(long pid, String what) throws Exception {
        Optional<ProcessHandle> h = ProcessHandle.of(pid);
        if (h.isPresent()) {
            try {
                h.get().onExit().get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
            } catch (java.util.concurrent.TimeoutException e) {
                throw new AssertionError(what + " (pid " + pid + ") is still running");
            }
        }
        check(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false) == false,
                what + " (pid " + pid + ") is still running");
    }

    /**
     * After a failed test: SIGKILL to the pids a fake binary wrote that are still running, only
     * when each is still the process the fake started (its script or `sleep 60`, started since
     * {@code since}), so a reused pid is left alone.
     */
    static void killListed(Path file, Path fake, java.time.Instant since) throws Exception {
        for (String word : Files.readString(file).trim().split("\\s+")) {
            if (word.isEmpty()) continue;
            ProcessHandle.of(Long.parseLong(word)).ifPresent(h -> {
                String line = h.info().commandLine().orElse("");
                boolean ours = line.contains(fake.getFileName().toString()) || line.endsWith("sleep 60");
                boolean recent = h.info().startInstant().map(t -> !t.isBefore(since.minusSeconds(1))).orElse(false);
                if (ours && recent) h.destroyForcibly();
            });
        }
    }

    static long readPid(Path file) throws Exception {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (System.nanoTime() < deadline) {
            String text = Files.readString(file).trim();
            if (!text.isEmpty()) return Long.parseLong(text.split("\\s+")[0]);
            Thread.sleep(20);
        }
        throw new AssertionError("no pid in " + file);
    }

    // --- REST and WebSocket, as an SDK would ------------------------------------------------

    static HttpResponse<String> post(String url, Map<String, String> headers, String body) throws Exception {
        HttpRequest.Builder r = HttpRequest.newBuilder(URI.create(url)).timeout(WAIT)
                .POST(HttpRequest.BodyPublishers.ofString(body));
        headers.forEach(r::header);
        return HTTP.send(r.build(), HttpResponse.BodyHandlers.ofString());
    }

    static HttpResponse<String> accessToken(MockServer mock) throws Exception {
        return post(mock.baseUrl() + "/api/v1/access-token", Map.of("Content-Type", "application/json",
                "X-Token", mock.connectorToken(), "X-Host", mock.host()), "{}");
    }

    /** access-token then sessions: {token, session_id}. */
    static String[] newSession(MockServer mock) throws Exception {
        HttpResponse<String> t = accessToken(mock);
        eq(200, t.statusCode());
        String token = (String) obj(Json.parse(t.body())).get("access_token");
        check(token != null && !token.isEmpty(), "an access_token: " + t.body());
        HttpResponse<String> s = post(mock.baseUrl() + "/api/v1/sessions", Map.of("Content-Type", "application/json",
                "Authorization", "Bearer " + token), "{\"streaming_enabled\":false,\"platform\":\"custom\"}");
        eq(200, s.statusCode());
        String id = (String) obj(Json.parse(s.body())).get("session_id");
        check(id != null && !id.isEmpty(), "a session_id: " + s.body());
        return new String[] {token, id};
    }

    static String enc(String s) { return URLEncoder.encode(s, StandardCharsets.UTF_8); }

    /** One WebSocket: every text frame parsed into a queue; the close code in a future. */
    static final class Ws implements WebSocket.Listener {
        final BlockingQueue<Map<String, Object>> frames = new LinkedBlockingQueue<>();
        final CompletableFuture<Integer> closed = new CompletableFuture<>();
        final List<String> seen = new ArrayList<>();
        private final StringBuilder partial = new StringBuilder();
        WebSocket ws;

        static Ws open(MockServer mock, String token, String sessionId) throws Exception {
            Ws l = new Ws();
            URI uri = URI.create(mock.wsUrl() + "?session_id=" + enc(sessionId) + "&access_token=" + enc(token));
            l.ws = WS_HTTP.newWebSocketBuilder().connectTimeout(Duration.ofSeconds(5)).buildAsync(uri, l)
                    .get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
            return l;
        }

        @Override public void onOpen(WebSocket webSocket) { webSocket.request(1); }

        @Override
        public CompletionStage<?> onText(WebSocket webSocket, CharSequence data, boolean last) {
            partial.append(data);
            if (last) {
                frames.add(obj(Json.parse(partial.toString())));
                partial.setLength(0);
            }
            webSocket.request(1);
            return null;
        }

        @Override
        public CompletionStage<?> onClose(WebSocket webSocket, int statusCode, String reason) {
            closed.complete(statusCode);
            return null;
        }

        @Override public void onError(WebSocket webSocket, Throwable error) { closed.completeExceptionally(error); }

        void send(String type, Map<String, Object> payload, String clientEventId) throws Exception {
            Map<String, Object> frame = new LinkedHashMap<>();
            frame.put("type", type);
            frame.put("payload", payload);
            if (clientEventId != null) frame.put("metadata", Map.of("custom", Map.of("client_event_id", clientEventId)));
            ws.sendText(Json.write(frame), true).get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        }

        /** The next frame of this type (others are skipped, and named if none comes). */
        Map<String, Object> await(String type) throws Exception {
            long deadline = System.nanoTime() + WAIT.toNanos();
            while (true) {
                long left = deadline - System.nanoTime();
                Map<String, Object> f = left > 0 ? frames.poll(left, TimeUnit.NANOSECONDS) : null;
                if (f == null) throw new AssertionError("no " + type + " within 10 s; frames seen: " + seen);
                seen.add(String.valueOf(f.get("type")));
                if (type.equals(f.get("type"))) return f;
            }
        }

        int closeCode() throws Exception { return closed.get(WAIT.toMillis(), TimeUnit.MILLISECONDS); }
    }

    static Map<String, Object> payload(Map<String, Object> frame) { return obj(frame.get("payload")); }

    static String clientEventId(Map<String, Object> frame) {
        Object metadata = frame.get("metadata");
        if (!(metadata instanceof Map<?, ?> m) || !(m.get("custom") instanceof Map<?, ?> c)) return null;
        return c.get("client_event_id") instanceof String s ? s : null;
    }

    // --- start ------------------------------------------------------------------------------

    static void startTests() {
        test("start: the readiness line's fields, through the accessors", () -> {
            try (MockServer mock = MockServer.start(options().scenario("playground").seed(42))) {
                check(mock.baseUrl().matches("http://127\\.0\\.0\\.1:\\d+"), "baseUrl " + mock.baseUrl());
                check(!mock.baseUrl().endsWith(":0"), "a real port: " + mock.baseUrl());
                String authority = mock.baseUrl().substring("http://".length());
                eq("ws://" + authority + "/ws", mock.wsUrl());
                eq(mock.baseUrl() + "/_mock", mock.controlUrl());
                eq(mock.controlUrl() + "/ui/", mock.consoleUrl());
                eq("mock-connector-token", mock.connectorToken());
                eq("localhost", mock.host());
                eq(42L, mock.seed());
                eq("playground", mock.scenario());
                eq("current", mock.profile());
                eq(Boolean.TRUE, mock.readyLine().get("ready"));
                check(mock.isAlive(), "running");
                check(mock.command().containsAll(List.of("--bind", "127.0.0.1:0", "--seed", "42")), "command " + mock.command());
                check(mock.stderrTail().contains("listening"), "its log is kept: " + mock.stderrTail());
            }
        });

        test("start: config file, extra args, env and a u64 seed reach the binary", () -> {
            Path config = temp(".json", "{\"connectors\":[{\"id\":\"acme\",\"token\":\"tok-acme\",\"host\":\"acme.example\"}]}");
            long seed = -2L; // u64 18446744073709551614
            Options o = options().config(config).seed(seed).args("--profile", "2026-05")
                    .env("MESSAGING_MOCK_SCENARIO", "lifecycle/basic-conversation");
            try (MockServer mock = MockServer.start(o)) {
                eq("tok-acme", mock.connectorToken());
                eq("acme.example", mock.host());
                eq("2026-05", mock.profile());
                eq("lifecycle/basic-conversation", mock.scenario());
                eq(seed, mock.seed());
                eq("18446744073709551614", String.valueOf(mock.readyLine().get("seed")));
                // The configured connector works for REST.
                eq(200, accessToken(mock).statusCode());
            }
        });

        test("start: a missing binary gives an error naming all three places", () -> {
            StartException none = expect(StartException.class,
                    () -> MockServer.findBinary(null, Map.of("PATH", "/nonexistent-dir")));
            String m = none.getMessage();
            check(m.contains("Options.binary is not set") && m.contains("$MESSAGING_MOCK_BIN is not set")
                    && m.contains("no `messaging-mock` on PATH (/nonexistent-dir)"), "names all three: " + m);
            StartException explicit = expect(StartException.class,
                    () -> MockServer.start(new Options().binary(Paths.get("/nonexistent/messaging-mock"))));
            check(explicit.getMessage().contains("/nonexistent/messaging-mock")
                    && explicit.getMessage().contains("Options.binary"), explicit.getMessage());
            StartException env = expect(StartException.class,
                    () -> MockServer.findBinary(null, Map.of("MESSAGING_MOCK_BIN", "/nope/mm", "PATH", bin.getParent().toString())));
            check(env.getMessage().contains("/nope/mm") && env.getMessage().contains("$MESSAGING_MOCK_BIN"), env.getMessage());
            // The order: Options.binary, then the environment variable, then PATH.
            eq(bin, MockServer.findBinary(bin, Map.of("MESSAGING_MOCK_BIN", "/nope/mm")));
            eq(bin, MockServer.findBinary(null, Map.of("MESSAGING_MOCK_BIN", bin.toString(), "PATH", "/nonexistent-dir")));
            Path onPath = MockServer.findBinary(null, Map.of("PATH", "/nonexistent-dir" + File.pathSeparator + bin.getParent()));
            eq(bin.getParent().resolve(MockServer.BINARY_NAME), onPath);
        });

        test("start: an exit before the readiness line throws with its stderr", () -> {
            StartException e = expect(StartException.class,
                    () -> MockServer.start(options().config(Paths.get("/nonexistent/mock-config.json"))));
            String m = e.getMessage();
            check(m.contains("exited with status 1"), "the status: " + m);
            check(m.contains("/nonexistent/mock-config.json") && m.contains("messaging-mock:"), "its stderr: " + m);
        });

        test("start: no readiness line in time: killed (with its children), stderr in the error", () -> {
            Path pids = temp(".pids", "");
            Path fake = script("echo \"starting up, slowly\" >&2\nsleep 60 &\necho $$ $! > " + pids + "\nwait");
            java.time.Instant since = java.time.Instant.now();
            try {
                long t0 = System.nanoTime();
                StartException e = expect(StartException.class,
                        () -> MockServer.start(new Options().binary(fake).readyTimeout(Duration.ofMillis(700))));
                double took = (System.nanoTime() - t0) / 1e9;
                check(took < 5, "bounded wait: " + took + " s");
                check(e.getMessage().contains("within 700 ms") && e.getMessage().contains("starting up, slowly"), e.getMessage());
                String[] both = Files.readString(pids).trim().split("\\s+");
                gone(Long.parseLong(both[0]), "the fake binary");
                gone(Long.parseLong(both[1]), "its child");
            } catch (Throwable failed) {
                killListed(pids, fake, since); // leave nothing behind
                throw failed;
            }
        });

        test("start: stderr is drained, so a chatty binary does not block", () -> {
            // 1 MB of stderr before the readiness line: an undrained pipe (64 KB) would block it.
            Path fake = script("i=0\nwhile [ $i -lt 2000 ]; do\n"
                    + "  echo \"log line $i ................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................\" >&2\n"
                    + "  i=$((i+1))\ndone\necho " + FAKE_READY + "\nexec sleep 60");
            try (MockServer mock = MockServer.start(new Options().binary(fake).readyTimeout(Duration.ofSeconds(20)))) {
                eq("http://127.0.0.1:9", mock.baseUrl());
                long deadline = System.nanoTime() + WAIT.toNanos();
                while (!mock.stderrTail().contains("log line 1999") && System.nanoTime() < deadline) Thread.sleep(10);
                check(mock.stderrTail().contains("log line 1999"), "the tail holds the last line");
                check(!mock.stderrTail().contains("log line 0 "), "and not the first");
                check(mock.stderrTail().length() <= 17_000, "bounded: " + mock.stderrTail().length());
            }
        });

        test("start: lines before the readiness line are skipped; stderr lines reach a listener", () -> {
            List<String> heard = java.util.Collections.synchronizedList(new ArrayList<>());
            Path fake = script("echo 'banner, not JSON'\necho '{\"ready\":false}'\necho 'to stderr' >&2\n"
                    + "echo " + FAKE_READY + "\nexec sleep 60");
            try (MockServer mock = MockServer.start(new Options().binary(fake).stderrLines(heard::add))) {
                eq("http://127.0.0.1:9", mock.baseUrl());
                long deadline = System.nanoTime() + WAIT.toNanos();
                while (!heard.contains("to stderr") && System.nanoTime() < deadline) Thread.sleep(10);
                eq(List.of("to stderr"), heard);
                eq(null, mock.wsUrl()); // absent fields are null
            }
        });
    }

    // --- a conversation ---------------------------------------------------------------------

    static void conversationTests() {
        test("conversation: REST, then history, join, greeting, echo and reply, pushed steps and faults, end -> 1000", () -> {
            try (MockServer mock = MockServer.start(options().scenario("playground"))) {
                Control control = mock.control();
                String[] s = newSession(mock);
                String token = s[0];
                String id = s[1];
                Ws ws = Ws.open(mock, token, id);
                Map<String, Object> batch = ws.await("EVENT_TYPE_EVENT_BATCH");
                List<Object> history = arr(payload(batch).get("events"));
                check(!history.isEmpty() && "EVENT_TYPE_SESSION_START".equals(obj(history.get(0)).get("type")),
                        "the history starts with SESSION_START: " + Json.write(batch));

                ws.send("EVENT_TYPE_REQUEST_POLY_AGENT_JOIN", Map.of(), null);
                eq("Ada", payload(ws.await("EVENT_TYPE_POLY_AGENT_JOINED")).get("agent_name"));
                eq("Hello! How can I help you today?", payload(ws.await("EVENT_TYPE_POLY_AGENT_MESSAGE")).get("text"));

                String clientId = UUID.randomUUID().toString();
                ws.send("EVENT_TYPE_USER_MESSAGE", Map.of("text", "hello mock"), clientId);
                Map<String, Object> echo = ws.await("EVENT_TYPE_USER_MESSAGE");
                eq(clientId, clientEventId(echo));
                eq("hello mock", payload(echo).get("text"));
                eq("You said: hello mock", payload(ws.await("EVENT_TYPE_POLY_AGENT_MESSAGE")).get("text"));

                // The control API steers this conversation: a duplicated pushed reply.
                eq(1, control.faults(id, "\"duplicate_next\""));
                eq(1, control.steps(id, "[{\"reply\": {\"text\": \"pushed by the test\"}}]"));
                Map<String, Object> first = ws.await("EVENT_TYPE_POLY_AGENT_MESSAGE");
                Map<String, Object> again = ws.await("EVENT_TYPE_POLY_AGENT_MESSAGE");
                eq("pushed by the test", payload(first).get("text"));
                eq(first.get("id"), again.get("id"));

                ws.send("EVENT_TYPE_USER_END_SESSION", Map.of(), null);
                Map<String, Object> end = ws.await("EVENT_TYPE_SESSION_END");
                check(String.valueOf(payload(end).get("reason")).startsWith("REASON_"), "a reason: " + Json.write(end));
                eq(1000, ws.closeCode());

                String state = String.valueOf(control.session(id).get("state"));
                check(state.startsWith("ended"), "ended: " + state);
                eq(1L, control.requestCount(RequestFilter.all().endpoint("ws").status(101).sessionId(id)));
            }
        });
    }

    // --- the control API --------------------------------------------------------------------

    static void controlTests() {
        test("control: health, scenarios, sessions, session, journal", () -> {
            try (MockServer mock = MockServer.start(options())) {
                Control c = mock.control();
                Health h = c.health();
                check(h.ok(), "ok");
                eq(0L, h.sessions());
                eq(1.0, h.clockScale());
                List<String> scenarios = c.scenarios();
                check(scenarios.contains("playground") && scenarios.contains("handoff/server-managed"), "names: " + scenarios);
                check(obj(obj(c.get("/openapi.json")).get("paths")).containsKey("/_mock/requests"), "get(path)");
                String a = newSession(mock)[1];
                String b = newSession(mock)[1];
                eq(2L, c.health().sessions());
                List<Map<String, Object>> all = c.sessions();
                eq(List.of(a, b), all.stream().map(m -> m.get("session_id")).toList());
                eq(List.of(b), c.sessions(1).stream().map(m -> m.get("session_id")).toList());
                Map<String, Object> one = c.session(a);
                eq(a, one.get("session_id"));
                eq("active", one.get("status"));
                eq("playground", one.get("scenario"));
                List<Map<String, Object>> journal = c.journal(a);
                check(!journal.isEmpty(), "a journal");
                check(Json.write(journal).contains("/api/v1/sessions"), "it holds the REST call: " + Json.write(journal));
            }
        });

        test("control: end, then a second end is a 409 with the server's message", () -> {
            try (MockServer mock = MockServer.start(options())) {
                Control c = mock.control();
                String[] s = newSession(mock);
                Ws ws = Ws.open(mock, s[0], s[1]);
                ws.await("EVENT_TYPE_EVENT_BATCH");
                eq(1, c.end(s[1], "REASON_AGENT_ENDED"));
                eq("REASON_AGENT_ENDED", payload(ws.await("EVENT_TYPE_SESSION_END")).get("reason"));
                eq(1000, ws.closeCode());
                check(String.valueOf(c.session(s[1]).get("state")).contains("REASON_AGENT_ENDED"), "state " + c.session(s[1]));
                ControlException again = expect(ControlException.class, () -> c.end(s[1]));
                eq(409, again.status());
                check(again.serverMessage() != null && !again.serverMessage().isEmpty()
                        && !again.serverMessage().startsWith("{"), "the message, not the body: " + again.serverMessage());
                check(again.getMessage().contains("409") && again.getMessage().contains(again.serverMessage()), again.getMessage());
            }
        });

        test("control: an unknown session is a 404 with the server's message", () -> {
            try (MockServer mock = MockServer.start(options())) {
                Control c = mock.control();
                for (Body call : List.<Body>of(() -> c.session("no-such-session"), () -> c.journal("no-such-session"),
                        () -> c.steps("no-such-session", "\"handoff_accepted\""), () -> c.end("no-such-session"),
                        () -> c.faults("no-such-session", "\"drop\""))) {
                    ControlException e = expect(ControlException.class, call);
                    eq(404, e.status());
                    eq("no session `no-such-session`", e.serverMessage());
                }
            }
        });

        test("control: a malformed body is a 400 with its pointer", () -> {
            try (MockServer mock = MockServer.start(options())) {
                Control c = mock.control();
                String id = newSession(mock)[1];
                ControlException e = expect(ControlException.class, () -> c.steps(id, "[\"handoff_accepted\", {\"no_such_step\": 1}]"));
                eq(400, e.status());
                check(e.pointer() != null && e.pointer().startsWith("/1"), "pointer " + e.pointer() + ": " + e.body());
                ControlException notJson = expect(ControlException.class, () -> c.faults(id, "drop"));
                eq(400, notJson.status());
                check(notJson.serverMessage().contains("not JSON"), notJson.serverMessage());
                eq(400, expect(ControlException.class, () -> c.nextScenario("no/such/scenario")).status());
            }
        });

        test("control: the clock advances and scales", () -> {
            try (MockServer mock = MockServer.start(options())) {
                Control c = mock.control();
                long before = c.health().clockMs();
                Health advanced = c.advanceClock(600_000);
                check(advanced.clockMs() >= before + 600_000, before + " -> " + advanced.clockMs());
                eq(10.0, c.scaleClock(10).clockScale());
                eq(10.0, c.health().clockScale());
                eq(1.0, c.scaleClock(1).clockScale());
                eq(400, expect(ControlException.class, () -> c.scaleClock(-1)).status());
            }
        });

        test("control: next scenario and connector scenario", () -> {
            try (MockServer mock = MockServer.start(options())) {
                Control c = mock.control();
                eq("lifecycle/basic-conversation", c.nextScenario("lifecycle/basic-conversation"));
                eq("lifecycle/basic-conversation", c.session(newSession(mock)[1]).get("scenario"));
                eq("playground", c.session(newSession(mock)[1]).get("scenario")); // only the next one
                eq("handoff/server-managed", c.connectorScenario(mock.connectorToken(), "handoff/server-managed"));
                eq("handoff/server-managed", c.session(newSession(mock)[1]).get("scenario"));
                ControlException unknown = expect(ControlException.class,
                        () -> c.connectorScenario("no-such-connector", "playground"));
                eq(400, unknown.status());
            }
        });

        test("control: http failures, requests and their count, with filters", () -> {
            try (MockServer mock = MockServer.start(options())) {
                Control c = mock.control();
                eq(0L, c.requestCount(null));
                Map<String, Object> armed = c.httpFailures(1, 0);
                eq(1L, armed.get("access_token"));
                eq(500, accessToken(mock).statusCode());
                Map<String, Object> rate = c.httpFailures("{\"access_token_429\": {\"count\": 1, \"retry_after_seconds\": 3}}");
                check(rate.containsKey("access_token_429"), "armed: " + rate);
                HttpResponse<String> limited = accessToken(mock);
                eq(429, limited.statusCode());
                eq(Optional.of("3"), limited.headers().firstValue("retry-after"));
                String id = newSession(mock)[1];
                eq(4L, c.requestCount(RequestFilter.all()));
                eq(3L, c.requestCount(RequestFilter.all().endpoint("access-token")));
                eq(1L, c.requestCount(RequestFilter.all().endpoint("access-token").status(500)));
                eq(1L, c.requestCount(RequestFilter.all().endpoint("access-token").status(429)));
                eq(1L, c.requestCount(RequestFilter.all().sessionId(id)));
                List<Map<String, Object>> calls = c.requests(RequestFilter.all().endpoint("sessions"));
                eq(1, calls.size());
                eq(id, calls.get(0).get("session_id"));
                eq(200L, calls.get(0).get("status"));
                long at = (Long) calls.get(0).get("at_ms");
                eq(1L, c.requestCount(RequestFilter.all().sinceMs(at).endpoint("sessions")));
                eq(0L, c.requestCount(RequestFilter.all().untilMs(at).endpoint("sessions")));
                eq(4, c.requests(null).size());
                eq(400, expect(ControlException.class, () -> c.requests(RequestFilter.all().endpoint("nope"))).status());
            }
        });

        test("control: a refused handshake (faults) shows in requests", () -> {
            try (MockServer mock = MockServer.start(options())) {
                Control c = mock.control();
                String[] s = newSession(mock);
                eq(1, c.faults(s[1], "{\"refuse_handshakes\": {\"count\": 1, \"status\": 503}}"));
                ExecutionException refused = expect(ExecutionException.class, () -> Ws.open(mock, s[0], s[1]));
                check(refused.getCause() instanceof WebSocketHandshakeException h && h.getResponse().statusCode() == 503,
                        "503: " + refused.getCause());
                eq(1L, c.requestCount(RequestFilter.all().endpoint("ws").status(503).sessionId(s[1])));
                Ws ok = Ws.open(mock, s[0], s[1]); // only one was refused
                ok.await("EVENT_TYPE_EVENT_BATCH");
                ok.ws.sendClose(1000, "").get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
            }
        });

        test("control: reset drops every session and closes their sockets with 1001", () -> {
            try (MockServer mock = MockServer.start(options())) {
                Control c = mock.control();
                String[] s = newSession(mock);
                newSession(mock);
                Ws ws = Ws.open(mock, s[0], s[1]);
                ws.await("EVENT_TYPE_EVENT_BATCH");
                c.nextScenario("lifecycle/basic-conversation");
                eq(0L, c.reset().sessions());
                eq(1001, ws.closeCode());
                eq(List.of(), c.sessions());
                eq(404, expect(ControlException.class, () -> c.session(s[1])).status());
                eq("playground", c.session(newSession(mock)[1]).get("scenario")); // the choice is gone too
            }
        });

        test("control: a control token is sent when the mock requires one", () -> {
            try (MockServer mock = MockServer.start(options().controlToken("s3cret"))) {
                check(mock.control().health().ok(), "authorized");
                ControlException e = expect(ControlException.class, () -> new Control(mock.controlUrl(), null).health());
                eq(401, e.status());
                ControlException wrong = expect(ControlException.class, () -> new Control(mock.controlUrl(), "nope").health());
                eq(401, wrong.status());
            }
        });

        test("control: over TLS the client trusts the mock's CA and no other", () -> {
            // A second mock only for its CA: a real CA that did not sign the first mock's certificate.
            try (MockServer mock = MockServer.start(options().tls(true));
                 MockServer other = MockServer.start(options().tls(true))) {
                check(mock.tls(), "tls in the readiness line");
                check(mock.command().contains("--tls"), "command " + mock.command());
                check(mock.baseUrl().matches("https://127\\.0\\.0\\.1:\\d+"), "baseUrl " + mock.baseUrl());
                eq("wss://" + mock.baseUrl().substring("https://".length()) + "/ws", mock.wsUrl());
                Path ca = mock.caFile();
                check(ca != null && Files.isRegularFile(ca), "caFile " + ca);
                String pem = Files.readString(ca);
                check(pem.startsWith("-----BEGIN CERTIFICATE-----") && pem.strip().endsWith("-----END CERTIFICATE-----"),
                        "PEM: " + pem);

                check(mock.control().health().ok(), "the mock's client trusts its CA");
                // Errors still carry the server's answer over https.
                eq(404, expect(ControlException.class, () -> mock.control().session("no-such-session")).status());
                for (Control untrusting : List.of(new Control(mock.controlUrl(), null),
                        new Control(mock.controlUrl(), null, other.caFile()))) {
                    java.io.UncheckedIOException e = expect(java.io.UncheckedIOException.class, untrusting::health);
                    check(e.getCause() instanceof javax.net.ssl.SSLHandshakeException, "a certificate failure: " + e.getCause());
                }
                mock.close();
                check(!Files.exists(ca), "the default CA file goes with the mock: " + ca);
            }
        });
    }

    // --- stopping ---------------------------------------------------------------------------

    static void processTests() {
        test("close: the process is gone, it stopped on SIGTERM (status 0), close is idempotent", () -> {
            MockServer mock = MockServer.start(options());
            long pid = mock.pid();
            check(ProcessHandle.of(pid).isPresent(), "running");
            mock.close();
            check(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false) == false, "gone at once after close()");
            check(!mock.isAlive(), "not alive");
            eq(0, mock.exitCode().orElse(-1)); // a clean shutdown, not SIGKILL
            check(mock.stderrTail().contains("stopped"), "it logged its shutdown: " + mock.stderrTail());
            mock.close();
            expect(java.io.UncheckedIOException.class, () -> mock.control().health());
        });

        test("close: descendants are killed too, and a mock that ignores SIGTERM is killed after the grace", () -> {
            Path pids = temp(".pids", "");
            // Ignores SIGTERM; its child (a sleep) would outlive it unless killed as a descendant.
            Path fake = script("trap '' TERM\nsleep 60 &\necho $$ $! > " + pids + "\necho " + FAKE_READY
                    + "\nwhile :; do sleep 1; done");
            java.time.Instant since = java.time.Instant.now();
            MockServer mock = MockServer.start(new Options().binary(fake).closeGrace(Duration.ofMillis(300)));
            try {
                long[] both = {readPid(pids), 0};
                both[1] = Long.parseLong(Files.readString(pids).trim().split("\\s+")[1]);
                eq(mock.pid(), both[0]);
                long t0 = System.nanoTime();
                mock.close();
                double took = (System.nanoTime() - t0) / 1e9;
                check(took >= 0.25 && took < 5, "waited the grace, then killed: " + took + " s");
                check(ProcessHandle.of(both[0]).map(ProcessHandle::isAlive).orElse(false) == false, "the fake is gone");
                gone(both[1], "its child");
                check(mock.exitCode().isPresent() && mock.exitCode().getAsInt() != 0, "killed: " + mock.exitCode());
            } catch (Throwable failed) {
                killListed(pids, fake, since); // leave nothing behind
                throw failed;
            }
        });

        test("shutdown hook: a mock the test forgot to close dies with the JVM", () -> {
            Path pidFile = temp(".pid", "");
            String java = ProcessHandle.current().info().command().orElse("java");
            Process child = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
                    "MockServerTest", "--forget", pidFile.toString())
                    .redirectErrorStream(true).start();
            String output;
            try (BufferedReader r = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8))) {
                output = String.join("\n", r.lines().toList());
            }
            check(child.waitFor(20, TimeUnit.SECONDS), "the child JVM exits");
            eq(0, child.exitValue());
            long pid = readPid(pidFile);
            check(output.contains("forgot " + pid), "the child started the mock: " + output);
            gone(pid, "the forgotten mock");
        });
    }

    /** The child JVM of the shutdown-hook test: starts a mock, never closes it, exits. */
    static void forgetful(Path pidFile) throws Exception {
        locateBinary();
        MockServer mock = MockServer.start(options());
        check(mock.control().health().ok(), "it runs");
        Files.writeString(pidFile, Long.toString(mock.pid()));
        System.out.println("forgot " + mock.pid());
        System.exit(0);
    }
}
