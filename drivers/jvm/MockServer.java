// Start the `messaging-mock` binary from a JVM test (Java 17, JDK only), and steer it through
// its control API:
//
//   try (MockServer mock = MockServer.start(new MockServer.Options().scenario("playground").seed(7))) {
//       String baseUrl = mock.baseUrl();                 // point the SDK under test here
//       ...
//       List<Map<String, Object>> sessions = mock.control().sessions();
//   }                                                    // SIGTERM, then SIGKILL after a grace
//
// The binary: Options.binary, else $MESSAGING_MOCK_BIN, else `messaging-mock` on PATH. It is
// started with `--bind 127.0.0.1:0` (any free port) and the options; start() returns once the
// mock has printed its one JSON readiness line. JSON goes through MessagingDriver.Json.
// See drivers/jvm/README.md, "Start the mock from a JVM test".
//
// Like MessagingDriver.java, this file is in the package `messaging.driver` but not under a
// matching directory: compile it by naming it (`javac -d out drivers/jvm/*.java ...`).

package messaging.driver;

import messaging.driver.MessagingDriver.Json;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

public final class MockServer implements AutoCloseable {
    /** The environment variable naming the binary when {@link Options#binary(Path)} is not set. */
    public static final String BINARY_ENV = "MESSAGING_MOCK_BIN";
    /** The name looked up on PATH last. */
    public static final String BINARY_NAME = "messaging-mock";

    private static final int TAIL_LINES = 200;
    private static final int TAIL_CHARS = 16_000;

    // --- options ----------------------------------------------------------------------------

    /** How to start the mock. Every setter returns {@code this}; everything is optional. */
    public static final class Options {
        private Path binary;
        private String bind = "127.0.0.1:0";
        private String scenario;
        private Long seed;
        private Path config;
        private final List<String> args = new ArrayList<>();
        private final Map<String, String> env = new LinkedHashMap<>();
        private Path directory;
        private String controlToken;
        private boolean tls;
        private Duration readyTimeout = Duration.ofSeconds(10);
        private Duration closeGrace = Duration.ofSeconds(5);
        private Consumer<String> stderrLines;

        /** The binary; else $MESSAGING_MOCK_BIN, else `messaging-mock` on PATH. */
        public Options binary(Path binary) { this.binary = binary; return this; }
        /** {@code --bind}; default {@code 127.0.0.1:0} (a free port, read from the readiness line). */
        public Options bind(String bind) { this.bind = Objects.requireNonNull(bind, "bind"); return this; }
        /** {@code --scenario}: a built-in name or a scenario file. */
        public Options scenario(String scenario) { this.scenario = scenario; return this; }
        /** {@code --seed}: a u64; a negative long stands for its unsigned value (as {@link #seed()} gives it back). */
        public Options seed(long seed) { this.seed = seed; return this; }
        /** {@code --config}: a JSON configuration file. */
        public Options config(Path config) { this.config = config; return this; }
        /** More command-line arguments, after the others (e.g. {@code "--time-scale", "100"}). */
        public Options args(String... more) { args.addAll(List.of(more)); return this; }
        /** An environment variable of the mock; {@code null} removes an inherited one. */
        public Options env(String name, String value) { env.put(Objects.requireNonNull(name, "name"), value); return this; }
        /** The mock's working directory (default: this JVM's). */
        public Options directory(Path directory) { this.directory = directory; return this; }
        /** {@code --control-token}: the control client then sends it as a bearer token. */
        public Options controlToken(String token) { this.controlToken = token; return this; }
        /**
         * {@code --tls}: https:// and wss:// with a throwaway CA whose PEM file is {@link
         * MockServer#caFile()}; {@link MockServer#control()} trusts that CA and no other.
         */
        public Options tls(boolean tls) { this.tls = tls; return this; }
        /** How long to wait for the readiness line (default 10 s). */
        public Options readyTimeout(Duration timeout) { this.readyTimeout = positive(timeout, "readyTimeout"); return this; }
        /** How long close() waits after SIGTERM before it kills (default 5 s). */
        public Options closeGrace(Duration grace) { this.closeGrace = nonNegative(grace, "closeGrace"); return this; }
        /** Every stderr line of the mock, as it comes (e.g. {@code System.err::println}); on a daemon thread. */
        public Options stderrLines(Consumer<String> listener) { this.stderrLines = listener; return this; }

        public Path binary() { return binary; }
        public String bind() { return bind; }
        public String scenario() { return scenario; }
        public Long seed() { return seed; }
        public Path config() { return config; }
        public List<String> args() { return Collections.unmodifiableList(args); }
        public Map<String, String> env() { return Collections.unmodifiableMap(env); }
        public Path directory() { return directory; }
        public String controlToken() { return controlToken; }
        public boolean tls() { return tls; }
        public Duration readyTimeout() { return readyTimeout; }
        public Duration closeGrace() { return closeGrace; }

        private static Duration positive(Duration d, String what) {
            if (d == null || d.isNegative() || d.isZero()) throw new IllegalArgumentException(what + " must be positive");
            return d;
        }

        private static Duration nonNegative(Duration d, String what) {
            if (d == null || d.isNegative()) throw new IllegalArgumentException(what + " must not be negative");
            return d;
        }
    }

    /** The mock could not be found or started, or did not become ready. */
    public static class StartException extends RuntimeException {
        private static final long serialVersionUID = 1L;
        public StartException(String message) { super(message); }
        public StartException(String message, Throwable cause) { super(message, cause); }
    }

    // --- finding the binary -----------------------------------------------------------------

    /**
     * The binary to run: {@code explicit} if not null, else {@code environment}'s
     * MESSAGING_MOCK_BIN if set, else `messaging-mock` in one of {@code environment}'s PATH
     * directories. A named binary that is not an executable file is an error (no fallback), and
     * so is finding none; the message names all three places.
     */
    public static Path findBinary(Path explicit, Map<String, String> environment) {
        String where = "Options.binary, $" + BINARY_ENV + ", or `" + BINARY_NAME + "` on PATH";
        if (explicit != null) {
            if (executable(explicit)) return explicit.toAbsolutePath();
            throw new StartException("messaging-mock binary " + explicit + " (Options.binary) is not an executable file"
                    + " (the binary comes from " + where + ")");
        }
        String fromEnv = environment.get(BINARY_ENV);
        if (fromEnv != null && !fromEnv.isEmpty()) {
            Path p = Paths.get(fromEnv);
            if (executable(p)) return p.toAbsolutePath();
            throw new StartException("messaging-mock binary " + fromEnv + " ($" + BINARY_ENV
                    + ") is not an executable file (the binary comes from " + where + ")");
        }
        String path = environment.getOrDefault("PATH", "");
        boolean windows = File.separatorChar == '\\';
        for (String dir : path.split(File.pathSeparator)) {
            if (dir.isEmpty()) continue;
            for (String name : windows ? List.of(BINARY_NAME + ".exe", BINARY_NAME) : List.of(BINARY_NAME)) {
                Path candidate = Paths.get(dir, name);
                if (executable(candidate)) return candidate.toAbsolutePath();
            }
        }
        throw new StartException("messaging-mock binary not found: Options.binary is not set, $" + BINARY_ENV
                + " is not set, and there is no `" + BINARY_NAME + "` on PATH (" + (path.isEmpty() ? "empty" : path)
                + "). Build it (cargo build -p messaging-mock: target/debug/messaging-mock) and set $"
                + BINARY_ENV + ", Options.binary or PATH.");
    }

    private static boolean executable(Path p) {
        return Files.isRegularFile(p) && Files.isExecutable(p);
    }

    // --- the running mock -------------------------------------------------------------------

    private final Process process;
    private final List<String> command;
    private final Options options;
    private final Tail stderr = new Tail();
    private final Tail stdout = new Tail();
    private final Thread stderrDrain;
    private final CompletableFuture<Map<String, Object>> ready = new CompletableFuture<>();
    private final Thread hook;
    private volatile Map<String, Object> readyLine = Map.of();
    private Control control;
    private boolean closed;

    private MockServer(Process process, List<String> command, Options options) {
        this.process = process;
        this.command = List.copyOf(command);
        this.options = options;
        try {
            process.getOutputStream().close(); // the mock reads nothing
        } catch (IOException ignored) {
            // nothing to do
        }
        Consumer<String> listener = options.stderrLines;
        this.stderrDrain = drain("messaging-mock stderr " + process.pid(), process.getErrorStream(), line -> {
            stderr.add(line);
            if (listener != null) {
                try {
                    listener.accept(line);
                } catch (RuntimeException ignored) {
                    // a listener's problem must not stop the drain
                }
            }
        }, () -> { });
        drain("messaging-mock stdout " + process.pid(), process.getInputStream(), this::stdoutLine,
                () -> ready.complete(null)); // EOF before the line: null, the process is gone
        this.hook = new Thread(() -> stop(Duration.ofSeconds(2)), "messaging-mock shutdown " + process.pid());
        Runtime.getRuntime().addShutdownHook(hook);
    }

    /** Starts the mock with default options. */
    public static MockServer start() { return start(new Options()); }

    /**
     * Starts the mock and waits for its readiness line (at most {@link Options#readyTimeout()}).
     * On a timeout or an exit before the line, the process is killed and a {@link
     * StartException} carries the tail of its stderr.
     */
    public static MockServer start(Options options) {
        Objects.requireNonNull(options, "options");
        Path binary = findBinary(options.binary, System.getenv());
        List<String> command = new ArrayList<>();
        command.add(binary.toString());
        command.add("--bind");
        command.add(options.bind);
        if (options.scenario != null) {
            command.add("--scenario");
            command.add(options.scenario);
        }
        if (options.seed != null) {
            command.add("--seed");
            command.add(Long.toUnsignedString(options.seed));
        }
        if (options.config != null) {
            command.add("--config");
            command.add(options.config.toString());
        }
        if (options.controlToken != null) {
            command.add("--control-token");
            command.add(options.controlToken);
        }
        if (options.tls) command.add("--tls");
        command.addAll(options.args);
        ProcessBuilder builder = new ProcessBuilder(command);
        options.env.forEach((name, value) -> {
            if (value == null) builder.environment().remove(name);
            else builder.environment().put(name, value);
        });
        if (options.directory != null) builder.directory(options.directory.toFile());
        Process process;
        try {
            process = builder.start();
        } catch (IOException e) {
            throw new StartException("cannot run " + String.join(" ", command) + ": " + e.getMessage(), e);
        }
        MockServer server = new MockServer(process, command, options);
        try {
            server.awaitReady(options.readyTimeout);
        } catch (RuntimeException | Error e) {
            server.shutdown(Duration.ZERO);
            throw e;
        }
        return server;
    }

    private void awaitReady(Duration timeout) {
        Map<String, Object> line;
        try {
            line = ready.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            stop(Duration.ZERO);
            throw new StartException("messaging-mock printed no readiness line within " + seconds(timeout)
                    + " (killed it)" + details());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            stop(Duration.ZERO);
            throw new StartException("interrupted while waiting for messaging-mock's readiness line (killed it)" + details(), e);
        } catch (ExecutionException e) {
            throw new IllegalStateException(e.getCause()); // never completed exceptionally
        }
        if (line == null) {
            // stdout closed: it exited (or closed stdout, which is as bad). Give stderr a moment.
            String status;
            try {
                status = process.waitFor(2, TimeUnit.SECONDS) ? "exited with status " + process.exitValue()
                        : "closed its stdout";
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                status = "closed its stdout";
            }
            stop(Duration.ZERO);
            throw new StartException("messaging-mock " + status + " before its readiness line" + details());
        }
        if (!(line.get("base_url") instanceof String)) {
            stop(Duration.ZERO);
            throw new StartException("messaging-mock's readiness line has no base_url: " + Json.write(line) + details());
        }
        readyLine = Collections.unmodifiableMap(line);
    }

    private void stdoutLine(String line) {
        if (!ready.isDone()) {
            String trimmed = line.trim();
            if (trimmed.startsWith("{")) {
                try {
                    if (Json.parse(trimmed) instanceof Map<?, ?> m && Boolean.TRUE.equals(m.get("ready"))) {
                        @SuppressWarnings("unchecked") Map<String, Object> fields = (Map<String, Object>) m;
                        ready.complete(fields);
                        return;
                    }
                } catch (Json.ParseException ignored) {
                    // not the line: kept in the tail
                }
            }
        }
        stdout.add(line);
    }

    private String details() {
        joinQuietly(stderrDrain, 1000);
        StringBuilder sb = new StringBuilder("\ncommand: ").append(String.join(" ", command));
        String out = stdout.text();
        if (!out.isEmpty()) sb.append("\nstdout:\n").append(out);
        String err = stderr.text();
        sb.append(err.isEmpty() ? "\nstderr: (empty)" : "\nstderr (tail):\n" + err);
        return sb.toString();
    }

    private static String seconds(Duration d) {
        return d.toMillis() % 1000 == 0 ? d.toSeconds() + " s" : d.toMillis() + " ms";
    }

    /** Reads lines on a daemon thread until EOF, so the pipe never fills. */
    private static Thread drain(String name, InputStream in, Consumer<String> lines, Runnable atEnd) {
        Thread t = new Thread(() -> {
            try (BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = reader.readLine()) != null) lines.accept(line);
            } catch (IOException ignored) {
                // the process is gone
            } finally {
                atEnd.run();
            }
        }, name);
        t.setDaemon(true);
        t.start();
        return t;
    }

    private static void joinQuietly(Thread t, long ms) {
        try {
            t.join(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** The last lines of a stream (at most 200 lines and about 16,000 characters). */
    private static final class Tail {
        private final ArrayDeque<String> lines = new ArrayDeque<>();
        private int chars;

        synchronized void add(String line) {
            lines.addLast(line);
            chars += line.length() + 1;
            while (lines.size() > 1 && (lines.size() > TAIL_LINES || chars > TAIL_CHARS)) {
                chars -= lines.removeFirst().length() + 1;
            }
        }

        synchronized String text() { return String.join("\n", lines); }
    }

    // --- accessors --------------------------------------------------------------------------

    private String field(String name) {
        return readyLine.get(name) instanceof String s ? s : null;
    }

    /** {@code base_url}, e.g. {@code http://127.0.0.1:41234}: the SDK's base URL. */
    public String baseUrl() { return field("base_url"); }
    /** {@code ws_url}, e.g. {@code ws://127.0.0.1:41234/ws}. */
    public String wsUrl() { return field("ws_url"); }
    /** {@code control_url}, e.g. {@code http://127.0.0.1:41234/_mock}. */
    public String controlUrl() { return field("control_url"); }
    /** {@code console_url}: the web console. */
    public String consoleUrl() { return field("console_url"); }
    /** {@code connector_token}: the X-Token of the first connector. */
    public String connectorToken() { return field("connector_token"); }
    /** {@code host}: the X-Host of the first connector. */
    public String host() { return field("host"); }
    /** {@code scenario}. */
    public String scenario() { return field("scenario"); }
    /** {@code profile}: {@code current} or {@code 2026-05}. */
    public String profile() { return field("profile"); }
    /** {@code tls}: whether it serves https:// and wss:// ({@link Options#tls(boolean)}). */
    public boolean tls() { return Boolean.TRUE.equals(readyLine.get("tls")); }

    /**
     * {@code ca_file}: under TLS, the PEM file of the CA that signed the server's certificate
     * (for the SDK under test to trust, e.g. with {@link #sslContextTrusting(Path)}); null
     * without TLS. The mock deletes it when it exits unless {@code --tls-ca-out} chose the path.
     */
    public Path caFile() {
        String f = field("ca_file");
        return f == null ? null : Paths.get(f);
    }

    /**
     * {@code seed}: a u64, in a long (above Long.MAX_VALUE it is negative; print it with
     * {@code Long.toUnsignedString}). {@code new Options().seed(mock.seed())} reproduces the run.
     */
    public long seed() {
        Object v = readyLine.get("seed");
        if (v instanceof BigInteger b) return b.longValue(); // the low 64 bits: the u64 as a long
        if (v instanceof Number n) return n.longValue();
        throw new IllegalStateException("the readiness line has no integer seed: " + Json.write(readyLine));
    }

    /** The whole readiness line, parsed. */
    public Map<String, Object> readyLine() { return readyLine; }
    /** The process id of the mock. */
    public long pid() { return process.pid(); }
    public boolean isAlive() { return process.isAlive(); }
    /** The exit status, once it has exited. */
    public OptionalInt exitCode() { return process.isAlive() ? OptionalInt.empty() : OptionalInt.of(process.exitValue()); }
    /** The last lines the mock wrote to stderr (its log). */
    public String stderrTail() { return stderr.text(); }
    /** The command line it was started with. */
    public List<String> command() { return command; }

    /** The control API client (one per server). */
    public synchronized Control control() {
        if (control == null) {
            String token = options.controlToken;
            if (token == null && options.env.containsKey("MESSAGING_MOCK_CONTROL_TOKEN")) {
                token = options.env.get("MESSAGING_MOCK_CONTROL_TOKEN");
            } else if (token == null) {
                token = System.getenv("MESSAGING_MOCK_CONTROL_TOKEN");
            }
            control = new Control(controlUrl(), token, caFile());
        }
        return control;
    }

    /**
     * An SSLContext that trusts the certificates of one PEM file and nothing else (not the JDK's
     * cacerts): what a client of a {@code --tls} mock needs, without ever turning verification off.
     */
    public static SSLContext sslContextTrusting(Path caPem) {
        Objects.requireNonNull(caPem, "caPem");
        try (InputStream in = Files.newInputStream(caPem)) {
            KeyStore trusted = KeyStore.getInstance(KeyStore.getDefaultType());
            trusted.load(null, null); // empty: only what follows is trusted
            int n = 0;
            for (Certificate cert : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                trusted.setCertificateEntry("ca-" + n++, cert);
            }
            if (n == 0) throw new IllegalArgumentException(caPem + " holds no certificate");
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(trusted);
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(null, tmf.getTrustManagers(), null);
            return context;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the CA file " + caPem + ": " + e.getMessage(), e);
        } catch (GeneralSecurityException e) {
            throw new IllegalArgumentException(caPem + " is not a usable PEM CA certificate: " + e.getMessage(), e);
        }
    }

    // --- stopping ---------------------------------------------------------------------------

    /**
     * Stops the mock: SIGTERM (Process.destroy) to it and its descendants, then, after {@link
     * Options#closeGrace()}, SIGKILL to whatever is left; returns once they have exited (or 5 s
     * after the kill). Idempotent.
     */
    @Override
    public void close() { shutdown(options.closeGrace); }

    private void shutdown(Duration grace) {
        stop(grace);
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException ignored) {
            // the JVM is shutting down: the hook runs (and finds it closed)
        }
    }

    private synchronized void stop(Duration grace) {
        if (closed) return;
        closed = true;
        // Taken before the parent dies: afterwards its children belong to init.
        List<ProcessHandle> all = new ArrayList<>();
        all.add(process.toHandle());
        try {
            process.descendants().forEach(all::add);
        } catch (UnsupportedOperationException | SecurityException ignored) {
            // only the mock itself, then
        }
        for (ProcessHandle p : all) p.destroy();
        if (!awaitExit(all, grace)) {
            if (process.isAlive()) {
                try {
                    process.descendants().filter(p -> !all.contains(p)).forEach(all::add); // started since
                } catch (UnsupportedOperationException | SecurityException ignored) {
                    // the ones we have
                }
            }
            for (ProcessHandle p : all) if (p.isAlive()) p.destroyForcibly();
            awaitExit(all, Duration.ofSeconds(5));
        }
        try {
            process.waitFor(1, TimeUnit.SECONDS); // so exitValue() is there
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static boolean awaitExit(List<ProcessHandle> processes, Duration within) {
        long deadline = System.nanoTime() + within.toNanos();
        for (ProcessHandle p : processes) {
            long left = deadline - System.nanoTime();
            try {
                if (left > 0) p.onExit().get(left, TimeUnit.NANOSECONDS);
            } catch (TimeoutException | ExecutionException e) {
                // checked below
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        return processes.stream().noneMatch(ProcessHandle::isAlive);
    }

    @Override
    public String toString() {
        return "MockServer[pid " + process.pid() + ", " + (baseUrl() == null ? "not ready" : baseUrl()) + "]";
    }

    // --- the control API --------------------------------------------------------------------

    /** {@code GET /_mock/health}, {@code POST /_mock/clock}, {@code POST /_mock/reset}. */
    public record Health(boolean ok, long sessions, long clockMs, double clockScale) {
        static Health of(Object json) {
            Map<String, Object> m = Control.object(json, "health");
            return new Health(Boolean.TRUE.equals(m.get("ok")), number(m.get("sessions")).longValue(),
                    number(m.get("clock_ms")).longValue(), number(m.get("clock_scale")).doubleValue());
        }

        private static Number number(Object v) { return v instanceof Number n ? n : 0; }
    }

    /** The filters of {@code GET /_mock/requests}; every one optional. */
    public static final class RequestFilter {
        private final Map<String, String> query = new LinkedHashMap<>();

        /** No filter: every logged call. */
        public static RequestFilter all() { return new RequestFilter(); }
        /** {@code access-token}, {@code sessions} or {@code ws}. */
        public RequestFilter endpoint(String endpoint) { return put("endpoint", endpoint); }
        /** The answer's status (101 for an accepted upgrade). */
        public RequestFilter status(int status) { return put("status", Integer.toString(status)); }
        public RequestFilter sessionId(String sessionId) { return put("session_id", sessionId); }
        /** Mock-clock ms: calls at or after. */
        public RequestFilter sinceMs(long ms) { return put("since_ms", Long.toString(ms)); }
        /** Mock-clock ms: calls before. */
        public RequestFilter untilMs(long ms) { return put("until_ms", Long.toString(ms)); }

        private RequestFilter put(String name, String value) {
            query.put(name, Objects.requireNonNull(value, name));
            return this;
        }

        String query(boolean count) {
            Map<String, String> q = new LinkedHashMap<>(query);
            if (count) q.put("count", "true");
            StringBuilder sb = new StringBuilder();
            q.forEach((k, v) -> sb.append(sb.length() == 0 ? '?' : '&').append(k).append('=').append(Control.encode(v)));
            return sb.toString();
        }

        @Override
        public String toString() { return query(false); }
    }

    /** A non-2xx answer of the control API: its status and the server's {@code message}. */
    public static class ControlException extends RuntimeException {
        private static final long serialVersionUID = 1L;
        private final int status;
        private final String serverMessage;
        private final String error;
        private final String pointer;
        private final String body;

        public ControlException(String method, String path, int status, String body) {
            this(method, path, status, body, parseBody(body));
        }

        private ControlException(String method, String path, int status, String body, Map<String, Object> parsed) {
            super(method + " " + path + ": " + status + " " + messageIn(parsed, body));
            this.status = status;
            this.serverMessage = messageIn(parsed, body);
            this.error = parsed.get("error") instanceof String s ? s : null;
            this.pointer = parsed.get("pointer") instanceof String s ? s : null;
            this.body = body;
        }

        public int status() { return status; }
        /** The server's {@code message} (the body itself when it is not the JSON error shape). */
        public String serverMessage() { return serverMessage; }
        /** The server's {@code error}, or null. */
        public String error() { return error; }
        /** The JSON pointer of a malformed body's problem, or null. */
        public String pointer() { return pointer; }
        public String body() { return body; }

        private static Map<String, Object> parseBody(String body) {
            try {
                if (Json.parse(body) instanceof Map<?, ?> m) {
                    @SuppressWarnings("unchecked") Map<String, Object> map = (Map<String, Object>) m;
                    return map;
                }
            } catch (RuntimeException ignored) {
                // not JSON
            }
            return Map.of();
        }

        private static String messageIn(Map<String, Object> parsed, String body) {
            if (parsed.get("message") instanceof String s) return s;
            if (parsed.get("error") instanceof String s) return s;
            return body;
        }
    }

    /**
     * A typed client of the control API ({@code schemas/control-openapi.json}) on
     * java.net.http.HttpClient. JSON results are the helper's values ({@code Map}, {@code List},
     * {@code String}, {@code Long}, {@code Double}, {@code Boolean}); a non-2xx answer throws
     * {@link ControlException}; a transport failure throws {@link UncheckedIOException}.
     * Thread-safe.
     */
    public static final class Control {
        private final String base;
        private final String token;
        private final HttpClient http;
        private final Duration timeout = Duration.ofSeconds(10);

        /** A client of {@code controlUrl} (e.g. {@code http://127.0.0.1:8080/_mock}); token may be null. */
        public Control(String controlUrl, String token) { this(controlUrl, token, null); }

        /**
         * A client of {@code controlUrl}; token may be null. For https, {@code caFile} (a PEM file,
         * e.g. {@link MockServer#caFile()}) is the only CA trusted; null: the JDK's default trust.
         * The file is read now (the mock deletes it when it exits).
         */
        public Control(String controlUrl, String token, Path caFile) {
            this.base = Objects.requireNonNull(controlUrl, "controlUrl").replaceAll("/+$", "");
            this.token = token;
            HttpClient.Builder builder = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                    .connectTimeout(Duration.ofSeconds(5));
            if (caFile != null) builder.sslContext(sslContextTrusting(caFile));
            this.http = builder.build();
        }

        /** {@code GET /health}. */
        public Health health() { return Health.of(get("/health")); }

        /** {@code GET /sessions}: every session, oldest first. */
        public List<Map<String, Object>> sessions() { return objects(get("/sessions"), "sessions"); }

        /** {@code GET /sessions?limit=N}: the newest N, oldest first. */
        public List<Map<String, Object>> sessions(int limit) {
            if (limit < 0) throw new IllegalArgumentException("limit must not be negative");
            return objects(get("/sessions?limit=" + limit), "sessions");
        }

        /** {@code GET /sessions/{id}}: id, connector, scenario, state, sockets, last sequence. */
        public Map<String, Object> session(String id) { return object(get("/sessions/" + segment(id)), "session"); }

        /** {@code GET /sessions/{id}/journal}: the journal entries. */
        public List<Map<String, Object>> journal(String id) {
            return objects(get("/sessions/" + segment(id) + "/journal"), "journal");
        }

        /** {@code POST /sessions/{id}/steps}: JSON text of one step or an array; how many were accepted. */
        public int steps(String id, String json) {
            return accepted(send("POST", "/sessions/" + segment(id) + "/steps", json));
        }

        /** {@code POST /sessions/{id}/faults}: JSON text of one fault or an array; how many were accepted. */
        public int faults(String id, String json) {
            return accepted(send("POST", "/sessions/" + segment(id) + "/faults", json));
        }

        /** {@code POST /sessions/{id}/end}; reason null: {@code REASON_NATURAL_END}. */
        public int end(String id, String reason) {
            Map<String, Object> body = new LinkedHashMap<>();
            if (reason != null) body.put("reason", reason);
            return accepted(send("POST", "/sessions/" + segment(id) + "/end", Json.write(body)));
        }

        /** {@code POST /sessions/{id}/end} with the default reason. */
        public int end(String id) { return end(id, null); }

        /** {@code POST /clock {"advance_ms": ms}}: timers due by then fire now. */
        public Health advanceClock(long ms) {
            if (ms < 0) throw new IllegalArgumentException("ms must not be negative");
            return Health.of(send("POST", "/clock", "{\"advance_ms\":" + ms + "}"));
        }

        /** {@code POST /clock {"scale": s}}: mock seconds per real second from now on. */
        public Health scaleClock(double scale) {
            return Health.of(send("POST", "/clock", Json.write(Map.of("scale", scale))));
        }

        /** {@code PUT /next-scenario}: the scenario of the next session; returns it. */
        public String nextScenario(String scenario) {
            return scenarioIn(send("PUT", "/next-scenario", Json.write(Map.of("scenario", scenario))));
        }

        /** {@code PUT /connectors/{token}/scenario}: the scenario of this connector's later tokens; returns it. */
        public String connectorScenario(String connectorToken, String scenario) {
            return scenarioIn(send("PUT", "/connectors/" + segment(connectorToken) + "/scenario",
                    Json.write(Map.of("scenario", scenario))));
        }

        /**
         * {@code POST /http-failures}: JSON text such as {@code {"access_token": 1, "sessions": 2}}
         * or {@code {"sessions_429": {"count": 1, "retry_after_seconds": 3}}}; counts add up.
         * Returns what is now armed.
         */
        public Map<String, Object> httpFailures(String json) { return object(send("POST", "/http-failures", json), "http-failures"); }

        /** The next {@code accessToken} access-token and {@code sessions} sessions calls answer their 500. */
        public Map<String, Object> httpFailures(int accessToken, int sessions) {
            Map<String, Object> body = new LinkedHashMap<>();
            body.put("access_token", accessToken);
            body.put("sessions", sessions);
            return httpFailures(Json.write(body));
        }

        /** {@code GET /requests}: the REST calls and /ws handshakes answered, oldest first. */
        public List<Map<String, Object>> requests(RequestFilter filter) {
            return objects(get("/requests" + (filter == null ? "" : filter.query(false))), "requests");
        }

        /** {@code GET /requests?count=true}: how many calls match. */
        public long requestCount(RequestFilter filter) {
            Object count = object(get("/requests" + (filter == null ? RequestFilter.all() : filter).query(true)),
                    "requests").get("count");
            Long n = Json.integral(count);
            if (n == null) throw new IllegalStateException("GET /requests?count=true: no integer count");
            return n;
        }

        /** {@code POST /reset}: every session dropped (sockets closed with 1001), every choice forgotten. */
        public Health reset() { return Health.of(send("POST", "/reset", "{}")); }

        /** {@code GET /scenarios}: the scenario names. */
        public List<String> scenarios() {
            List<String> names = new ArrayList<>();
            for (Object o : list(get("/scenarios"), "scenarios")) names.add(String.valueOf(o));
            return names;
        }

        /** {@code GET} any control path (e.g. {@code "/openapi.json"}), parsed. */
        public Object get(String path) { return send("GET", path, null); }

        /** Any control request: path under the control URL, JSON text body (or null); the answer parsed. */
        public Object send(String method, String path, String json) {
            HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(base + path)).timeout(timeout);
            if (token != null) request.header("Authorization", "Bearer " + token);
            if (json == null) {
                request.method(method, HttpRequest.BodyPublishers.noBody());
            } else {
                request.header("Content-Type", "application/json");
                request.method(method, HttpRequest.BodyPublishers.ofString(json));
            }
            HttpResponse<String> response;
            try {
                response = http.send(request.build(), HttpResponse.BodyHandlers.ofString());
            } catch (IOException e) {
                throw new UncheckedIOException(method + " " + base + path + ": " + e.getMessage(), e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new UncheckedIOException(new InterruptedIOException(method + " " + base + path + ": interrupted"));
            }
            int status = response.statusCode();
            if (status < 200 || status > 299) throw new ControlException(method, path, status, response.body());
            String body = response.body();
            if (body.isBlank()) return null;
            try {
                return Json.parse(body);
            } catch (Json.ParseException e) {
                throw new IllegalStateException(method + " " + path + ": the answer is not JSON (" + e.getMessage() + ")");
            }
        }

        private static int accepted(Object json) {
            Long n = Json.integral(object(json, "accepted").get("accepted"));
            if (n == null) throw new IllegalStateException("no integer `accepted` in " + Json.write(json));
            return (int) (long) n;
        }

        private static String scenarioIn(Object json) {
            return object(json, "scenario choice").get("scenario") instanceof String s ? s : null;
        }

        static Map<String, Object> object(Object json, String what) {
            if (json instanceof Map<?, ?> m) {
                @SuppressWarnings("unchecked") Map<String, Object> map = (Map<String, Object>) m;
                return map;
            }
            throw new IllegalStateException(what + ": expected a JSON object, got " + Json.write(json));
        }

        private static List<?> list(Object json, String what) {
            if (json instanceof List<?> l) return l;
            throw new IllegalStateException(what + ": expected a JSON array, got " + Json.write(json));
        }

        private static List<Map<String, Object>> objects(Object json, String what) {
            List<Map<String, Object>> out = new ArrayList<>();
            for (Object o : list(json, what)) out.add(object(o, what));
            return out;
        }

        static String encode(String s) { return URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20"); }

        private static String segment(String s) { return encode(Objects.requireNonNull(s, "id")); }
    }
}
