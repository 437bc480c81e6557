// The driver contract (docs/driver-contract.md) for the JVM (Java 17, JDK only: no
// Maven, no JSON library), so an SDK author only writes an adapter:
//
//   import messaging.driver.MessagingDriver;
//   import messaging.driver.MessagingDriver.*;
//
//   MessagingDriver.run("my-sdk", "1.2.3", new Adapter() {
//       public void start(Command c, Ctx ctx) { ... c.streaming() ... }
//       public Object view(Command c, Ctx ctx) { return Map.of("connection", "open"); }
//   });
//
// Each command `cmd` calls the adapter method of the same name in camelCase (`tap_suggestion` ->
// `tapSuggestion`) with (command, ctx). Every method has a default that throws `Unsupported`.
// See drivers/jvm/README.md.
//
// The class is in the package `messaging.driver`, so code in any package can import it. The
// file is not under a matching directory: compile it by naming it (`javac -d out
// drivers/jvm/MessagingDriver.java YourDriver.java`), not through -sourcepath.

package messaging.driver;

import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.UndeclaredThrowableException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.function.Consumer;

public final class MessagingDriver {
    private MessagingDriver() {}

    /** Exit status after `exit`, or when stdin closes (contract §5). */
    public static final int EXIT_OK = 0;
    /** Exit status for "this SDK cannot run this case at all" (contract §5): the case is skipped. */
    public static final int EXIT_NOT_IMPLEMENTED = 89;
    /** Exit status for an uncaught exception outside a command: the driver broke. */
    public static final int EXIT_BROKEN = 1;

    // --- exceptions an adapter throws -----------------------------------------------------------

    /** The SDK cannot do this command: the reply is {@code {"re": id, "unsupported": true}}. */
    public static class Unsupported extends RuntimeException {
        private static final long serialVersionUID = 1L;
        public Unsupported() { super("unsupported"); }
        public Unsupported(String reason) { super(reason); }
    }

    /** The SDK cannot run this case at all: no reply, the driver exits 89 and the case is skipped. */
    public static class NotImplemented extends RuntimeException {
        private static final long serialVersionUID = 1L;
        public NotImplemented() { super("not implemented"); }
        public NotImplemented(String reason) { super(reason); }
    }

    /** Exit 89 right away (case skipped), from anywhere: stdout is flushed first. */
    public static void notImplemented(String reason) {
        System.err.println("driver: not implemented: " + reason);
        System.err.flush();
        Stdout.flushQuietly();
        Runtime.getRuntime().halt(EXIT_NOT_IMPLEMENTED);
    }

    // --- the environment and the context -----------------------------------------------------

    /**
     * MESSAGING_* and CONFORMANCE_CASE (contract §1); any of them may be null. {@code caFile} is
     * MESSAGING_CA_FILE, the PEM CA of a TLS mock ({@code run --tls}).
     */
    public record Env(String baseUrl, String wsUrl, String connectorToken, String host, String caseId,
                      String caFile) {
        /** Without a CA file (the form before {@code caFile} was added). */
        public Env(String baseUrl, String wsUrl, String connectorToken, String host, String caseId) {
            this(baseUrl, wsUrl, connectorToken, host, caseId, null);
        }

        public static Env from(Map<String, String> source) {
            String base = source.get("MESSAGING_BASE_URL");
            return new Env(base, wsUrlFrom(base), source.get("MESSAGING_CONNECTOR_TOKEN"),
                    source.get("MESSAGING_HOST"), source.get("CONFORMANCE_CASE"),
                    source.get("MESSAGING_CA_FILE"));
        }

        /** As a real SDK derives it: trailing '/' removed, http -> ws, https -> wss, then "/ws". */
        public static String wsUrlFrom(String baseUrl) {
            if (baseUrl == null || baseUrl.isEmpty()) return null;
            String base = baseUrl.replaceAll("/+$", "");
            String lower = base.toLowerCase(java.util.Locale.ROOT);
            if (lower.startsWith("https:")) base = "wss:" + base.substring(6);
            else if (lower.startsWith("http:")) base = "ws:" + base.substring(5);
            return base + "/ws";
        }
    }

    /** Passed to every adapter method. */
    public static final class Ctx {
        private final Env env;
        private final Consumer<String> log;

        public Ctx(Env env, Consumer<String> log) {
            this.env = env;
            this.log = log;
        }

        public Env env() { return env; }

        /** Writes {@code {"log": text}} to stdout; the kit keeps it in the report. Thread-safe. */
        public void log(String text) { log.accept(String.valueOf(text)); }

        /** The working directory: the driver's to persist state in (contract §1). */
        public Path workDir() { return Paths.get("").toAbsolutePath(); }
    }

    /** One parsed command: {@code id}, {@code cmd} and its fields, with typed accessors. */
    public static final class Command {
        private final long id;
        private final String cmd;
        private final Map<String, Object> fields;

        public Command(long id, String cmd, Map<String, Object> fields) {
            this.id = id;
            this.cmd = cmd;
            this.fields = fields;
        }

        public long id() { return id; }
        public String cmd() { return cmd; }
        /** The whole command object as parsed (unmodifiable view). */
        public Map<String, Object> fields() { return java.util.Collections.unmodifiableMap(fields); }
        public Object get(String key) { return fields.get(key); }
        public boolean has(String key) { return fields.containsKey(key); }

        /** {@code start}: the `streaming` flag (false when absent). */
        public boolean streaming() { return Boolean.TRUE.equals(fields.get("streaming")); }
        /** {@code send}: the text (null when absent or not a string). */
        public String text() { return string("text"); }
        /** {@code typing}: "started" or "stopped". */
        public String state() { return string("state"); }
        /** {@code tap_suggestion}: the message id. */
        public String messageId() { return string("message_id"); }
        /** {@code tap_suggestion}: the 0-based index (-1 when absent or not an integer). */
        public int index() {
            Object v = fields.get("index");
            Long l = Json.integral(v);
            return l == null ? -1 : (int) (long) l;
        }

        private String string(String key) {
            Object v = fields.get(key);
            return v instanceof String s ? s : null;
        }

        @Override
        public String toString() { return Json.write(fields); }
    }

    /**
     * The SDK under test. Every method may throw: {@link Unsupported} -> unsupported reply,
     * {@link NotImplemented} -> exit 89, anything else -> {@code ok:false} with its message.
     * The return value of every method except {@code view} is ignored.
     */
    public interface Adapter {
        default void start(Command command, Ctx ctx) throws Exception { throw new Unsupported(); }
        default void send(Command command, Ctx ctx) throws Exception { throw new Unsupported(); }
        default void typing(Command command, Ctx ctx) throws Exception { throw new Unsupported(); }
        default void tapSuggestion(Command command, Ctx ctx) throws Exception { throw new Unsupported(); }
        default void end(Command command, Ctx ctx) throws Exception { throw new Unsupported(); }
        /** The view (contract §4): Maps, Lists, Strings, Numbers, Booleans and nulls. */
        default Object view(Command command, Ctx ctx) throws Exception { throw new Unsupported(); }
        default void restart(Command command, Ctx ctx) throws Exception { throw new Unsupported(); }
        /** Close the SDK. Unsupported here still replies ok and exits 0. */
        default void exit(Command command, Ctx ctx) throws Exception { throw new Unsupported(); }
    }

    // --- running ----------------------------------------------------------------------------

    /**
     * Run the driver on the real stdin/stdout: print the ready line, answer commands in order,
     * then exit the JVM (0 after `exit` or stdin EOF, 89 on NotImplemented, 1 on an uncaught
     * exception in another thread). Never returns.
     *
     * <p>{@code System.out} is redirected to stderr first, so SDK code that prints cannot break
     * the framing; the helper writes its lines to the real stdout itself.
     */
    public static void run(String name, String version, Adapter adapter) {
        Stdout.install();
        Thread.setDefaultUncaughtExceptionHandler((thread, error) -> {
            Throwable cause = unwrap(error);
            if (cause instanceof NotImplemented) notImplemented(messageOf(cause));
            System.err.println("driver: uncaught error in thread " + thread.getName() + ":");
            error.printStackTrace(System.err);
            System.err.flush();
            Stdout.flushQuietly();
            Runtime.getRuntime().halt(EXIT_BROKEN);
        });
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        Loop loop = new Loop(name, version, adapter, System.getenv(), Stdout::writeLine);
        int status;
        try {
            status = loop.run(in);
        } catch (Throwable error) {
            System.err.println("driver: uncaught error:");
            error.printStackTrace(System.err);
            status = EXIT_BROKEN;
        }
        Stdout.flushQuietly();
        System.err.flush();
        if (status == EXIT_OK && loop.exitCommandSeen()) {
            // A short grace, so sockets the adapter closed can send their close frame.
            try { Thread.sleep(50); } catch (InterruptedException ignored) { Thread.currentThread().interrupt(); }
        }
        // halt, not exit: SDK threads and shutdown hooks must not hold the driver up.
        Runtime.getRuntime().halt(status);
    }

    /** The real stdout, written a whole line at a time. */
    static final class Stdout {
        private static final Object LOCK = new Object();
        private static OutputStream out;

        static synchronized void install() {
            if (out != null) return;
            out = new FileOutputStream(FileDescriptor.out);
            System.setOut(new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8));
        }

        static void writeLine(String line) {
            byte[] bytes = (line + "\n").getBytes(StandardCharsets.UTF_8);
            synchronized (LOCK) {
                try {
                    out.write(bytes);
                    out.flush();
                } catch (IOException e) {
                    // The runner went away: nothing is left to report to.
                    Runtime.getRuntime().halt(EXIT_OK);
                }
            }
        }

        static void flushQuietly() {
            synchronized (LOCK) {
                try {
                    if (out != null) out.flush();
                } catch (IOException ignored) {
                    // nothing to do
                }
            }
        }
    }

    /**
     * The contract loop, independent of the process: reads command lines from {@code in},
     * writes its lines through {@code out}, and returns the exit status instead of exiting.
     * {@link #run} wires it to stdin/stdout; tests drive it directly.
     */
    public static final class Loop {
        private final String name;
        private final String version;
        private final Adapter adapter;
        private final Consumer<String> out;
        private final Ctx ctx;
        private final boolean strict;
        private final Object schema;
        private final String startupProblem; // a schema that could not be read: logged after ready
        private boolean exitSeen;

        public Loop(String name, String version, Adapter adapter, Map<String, String> environment, Consumer<String> out) {
            this.name = name;
            this.version = version;
            this.adapter = Objects.requireNonNull(adapter, "adapter");
            this.out = out;
            this.ctx = new Ctx(Env.from(environment), this::log);
            this.strict = "1".equals(environment.get("DRIVER_STRICT_VIEW"));
            SchemaSource source = ViewSchema.load(environment);
            this.schema = source.schema();
            this.startupProblem = source.problem();
        }

        public Ctx ctx() { return ctx; }
        boolean exitCommandSeen() { return exitSeen; }

        void write(Map<String, Object> value) { out.accept(Json.write(value)); }

        void log(String text) {
            Map<String, Object> line = new LinkedHashMap<>();
            line.put("log", text);
            write(line);
        }

        /** Runs until `exit`, EOF or NotImplemented; returns the exit status. */
        public int run(BufferedReader in) throws IOException {
            Map<String, Object> ready = new LinkedHashMap<>();
            ready.put("ready", true);
            ready.put("name", name);
            ready.put("version", version);
            write(ready);
            if (startupProblem != null) log(startupProblem);
            if (schema != null) {
                Set<String> unknown = ViewSchema.unknownKeywords(schema);
                if (!unknown.isEmpty()) log("driver-view schema: keywords not checked: " + String.join(", ", unknown));
            }
            String line;
            while ((line = in.readLine()) != null) {
                if (line.isBlank()) continue;
                Integer status = handle(line);
                if (status != null) return status;
            }
            return EXIT_OK;
        }

        /** One line: writes its reply (if any); returns an exit status when the loop must end. */
        Integer handle(String line) {
            Object parsed;
            try {
                parsed = Json.parse(line);
            } catch (Json.ParseException e) {
                log("not a command (not JSON): " + line);
                return null;
            }
            Long id = parsed instanceof Map<?, ?> m ? Json.integral(m.get("id")) : null;
            if (id == null) {
                log("not a command (no integer id): " + line);
                return null;
            }
            @SuppressWarnings("unchecked")
            Map<String, Object> fields = (Map<String, Object>) parsed;
            String cmd = fields.get("cmd") instanceof String s ? s : null;
            Command command = new Command(id, cmd, fields);
            Map<String, Object> reply = new LinkedHashMap<>();
            reply.put("re", id);
            try {
                Object result = dispatch(command);
                reply.put("ok", true);
                if ("view".equals(cmd)) viewReply(reply, result);
            } catch (Throwable thrown) {
                Throwable error = unwrap(thrown);
                if (error instanceof NotImplemented) {
                    System.err.println("driver: not implemented: " + messageOf(error));
                    System.err.flush();
                    return EXIT_NOT_IMPLEMENTED;
                }
                reply.clear();
                reply.put("re", id);
                if (error instanceof Unsupported) {
                    if ("exit".equals(cmd)) {
                        reply.put("ok", true); // an adapter without exit still exits cleanly
                    } else {
                        String reason = error.getMessage();
                        if (reason != null && !reason.equals("unsupported")) {
                            System.err.println("driver: " + cmd + " unsupported: " + reason);
                        }
                        reply.put("unsupported", true);
                    }
                } else {
                    if (thrown instanceof Error && !(error instanceof AssertionError)) {
                        thrown.printStackTrace(System.err);
                    }
                    reply.put("ok", false);
                    reply.put("error", messageOf(error));
                }
            }
            write(reply);
            if ("exit".equals(cmd)) {
                exitSeen = true;
                return EXIT_OK;
            }
            return null;
        }

        private Object dispatch(Command c) throws Exception {
            if (c.cmd() == null) throw new Unsupported();
            switch (c.cmd()) {
                case "start": adapter.start(c, ctx); return null;
                case "send": adapter.send(c, ctx); return null;
                case "typing": adapter.typing(c, ctx); return null;
                case "tap_suggestion": adapter.tapSuggestion(c, ctx); return null;
                case "end": adapter.end(c, ctx); return null;
                case "view": return adapter.view(c, ctx);
                case "restart": adapter.restart(c, ctx); return null;
                case "exit": adapter.exit(c, ctx); return null;
                default: throw new Unsupported(); // an unknown cmd
            }
        }

        private void viewReply(Map<String, Object> reply, Object result) {
            // Judge what goes on the wire: the view as written, read back.
            Object wire = Json.parse(Json.write(result));
            List<String> problems = schema == null ? List.of() : ViewSchema.validate(wire, schema);
            if (problems.isEmpty()) {
                reply.put("view", wire);
                return;
            }
            String error = "view does not match driver-view schema: " + String.join("; ", problems);
            if (strict) {
                reply.remove("ok");
                reply.put("ok", false);
                reply.put("error", error);
            } else {
                log(error);
                reply.put("view", wire);
            }
        }
    }

    /** The exception an adapter threw, out of the wrappers futures and reflection put around it. */
    static Throwable unwrap(Throwable error) {
        Throwable e = error;
        while ((e instanceof CompletionException || e instanceof ExecutionException
                || e instanceof InvocationTargetException || e instanceof UndeclaredThrowableException)
                && e.getCause() != null) {
            e = e.getCause();
        }
        return e;
    }

    static String messageOf(Throwable error) {
        String m = error.getMessage();
        return m == null || m.isEmpty() ? error.getClass().getSimpleName() : m;
    }

    // --- JSON -------------------------------------------------------------------------------

    /**
     * A small JSON reader and writer. Reading gives {@code LinkedHashMap<String,Object>} (key
     * order kept), {@code ArrayList<Object>}, {@code String}, {@code Long} (or {@code BigInteger}
     * beyond long), {@code Double} (any number with a fraction or an exponent), {@code Boolean}
     * and {@code null}. Writing also accepts any Map, Iterable, array, Number, CharSequence,
     * Character and Enum (its name). Non-ASCII is written as is (UTF-8); control characters and
     * lone surrogates are written as {@code \\uXXXX}, so every Java string round-trips.
     */
    public static final class Json {
        private Json() {}

        public static final class ParseException extends IllegalArgumentException {
            private static final long serialVersionUID = 1L;
            ParseException(String message) { super(message); }
        }

        public static Object parse(String text) {
            Reader r = new Reader(text);
            r.ws();
            Object value = r.value(0);
            r.ws();
            if (r.pos != text.length()) throw r.error("unexpected text after the value");
            return value;
        }

        /** Integral JSON number as a long (e.g. an `id`): Long, Integer, or a whole Double. */
        public static Long integral(Object v) {
            if (v instanceof Long || v instanceof Integer || v instanceof Short || v instanceof Byte) {
                return ((Number) v).longValue();
            }
            if (v instanceof Double d && !d.isInfinite() && d == Math.rint(d) && Math.abs(d) <= 9.007199254740991E15) {
                return d.longValue();
            }
            if (v instanceof BigInteger b && b.bitLength() < 64) return b.longValue();
            return null;
        }

        public static String write(Object value) {
            StringBuilder sb = new StringBuilder();
            write(sb, value, 0);
            return sb.toString();
        }

        private static void write(StringBuilder sb, Object v, int depth) {
            if (depth > 512) throw new IllegalArgumentException("JSON value nested too deeply (a cycle?)");
            if (v == null) {
                sb.append("null");
            } else if (v instanceof CharSequence || v instanceof Character) {
                string(sb, v.toString());
            } else if (v instanceof Boolean) {
                sb.append(v);
            } else if (v instanceof Double || v instanceof Float) {
                double d = ((Number) v).doubleValue();
                if (Double.isNaN(d) || Double.isInfinite(d)) throw new IllegalArgumentException("JSON has no " + d);
                if (d == Math.rint(d) && Math.abs(d) < 1e15) sb.append((long) d);
                else sb.append(v);
            } else if (v instanceof BigDecimal b) {
                sb.append(b.toString());
            } else if (v instanceof Number) {
                sb.append(v); // Long, Integer, Short, Byte, BigInteger, AtomicLong...
            } else if (v instanceof Map<?, ?> map) {
                sb.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : map.entrySet()) {
                    if (!first) sb.append(',');
                    first = false;
                    string(sb, String.valueOf(e.getKey()));
                    sb.append(':');
                    write(sb, e.getValue(), depth + 1);
                }
                sb.append('}');
            } else if (v instanceof Iterable<?> it) {
                sb.append('[');
                boolean first = true;
                for (Object item : it) {
                    if (!first) sb.append(',');
                    first = false;
                    write(sb, item, depth + 1);
                }
                sb.append(']');
            } else if (v instanceof Object[] array) {
                write(sb, Arrays.asList(array), depth);
            } else if (v.getClass().isArray()) {
                int n = java.lang.reflect.Array.getLength(v);
                List<Object> items = new ArrayList<>(n);
                for (int i = 0; i < n; i++) items.add(java.lang.reflect.Array.get(v, i));
                write(sb, items, depth);
            } else if (v instanceof Enum<?> e) {
                string(sb, e.name());
            } else {
                throw new IllegalArgumentException("cannot write " + v.getClass().getName() + " as JSON");
            }
        }

        static void string(StringBuilder sb, String s) {
            sb.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"' -> sb.append("\\\"");
                    case '\\' -> sb.append("\\\\");
                    case '\n' -> sb.append("\\n");
                    case '\r' -> sb.append("\\r");
                    case '\t' -> sb.append("\\t");
                    case '\b' -> sb.append("\\b");
                    case '\f' -> sb.append("\\f");
                    default -> {
                        if (c < 0x20 || c == 0x7f || c == '\u2028' || c == '\u2029') {
                            hex(sb, c);
                        } else if (Character.isHighSurrogate(c)) {
                            if (i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                                sb.append(c).append(s.charAt(++i));
                            } else {
                                hex(sb, c); // lone: UTF-8 cannot carry it
                            }
                        } else if (Character.isLowSurrogate(c)) {
                            hex(sb, c);
                        } else {
                            sb.append(c);
                        }
                    }
                }
            }
            sb.append('"');
        }

        private static void hex(StringBuilder sb, char c) {
            sb.append(String.format("\\u%04x", (int) c));
        }

        private static final class Reader {
            final String s;
            int pos;

            Reader(String s) { this.s = s; }

            ParseException error(String what) {
                return new ParseException(what + " at offset " + pos);
            }

            void ws() {
                while (pos < s.length()) {
                    char c = s.charAt(pos);
                    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') pos++;
                    else break;
                }
            }

            Object value(int depth) {
                if (depth > 512) throw error("nested too deeply");
                if (pos >= s.length()) throw error("unexpected end");
                char c = s.charAt(pos);
                switch (c) {
                    case '{': return object(depth);
                    case '[': return array(depth);
                    case '"': return string();
                    case 't': return literal("true", Boolean.TRUE);
                    case 'f': return literal("false", Boolean.FALSE);
                    case 'n': return literal("null", null);
                    default:
                        if (c == '-' || (c >= '0' && c <= '9')) return number();
                        throw error("unexpected character '" + c + "'");
                }
            }

            Object literal(String word, Object value) {
                if (!s.startsWith(word, pos)) throw error("bad literal");
                pos += word.length();
                return value;
            }

            Map<String, Object> object(int depth) {
                Map<String, Object> map = new LinkedHashMap<>();
                pos++;
                ws();
                if (peek() == '}') {
                    pos++;
                    return map;
                }
                while (true) {
                    ws();
                    if (peek() != '"') throw error("expected a key");
                    String key = string();
                    ws();
                    if (peek() != ':') throw error("expected ':'");
                    pos++;
                    ws();
                    map.put(key, value(depth + 1));
                    ws();
                    char c = peek();
                    pos++;
                    if (c == '}') return map;
                    if (c != ',') {
                        pos--;
                        throw error("expected ',' or '}'");
                    }
                }
            }

            List<Object> array(int depth) {
                List<Object> list = new ArrayList<>();
                pos++;
                ws();
                if (peek() == ']') {
                    pos++;
                    return list;
                }
                while (true) {
                    ws();
                    list.add(value(depth + 1));
                    ws();
                    char c = peek();
                    pos++;
                    if (c == ']') return list;
                    if (c != ',') {
                        pos--;
                        throw error("expected ',' or ']'");
                    }
                }
            }

            char peek() {
                if (pos >= s.length()) throw error("unexpected end");
                return s.charAt(pos);
            }

            String string() {
                pos++; // the opening quote
                StringBuilder sb = new StringBuilder();
                while (true) {
                    if (pos >= s.length()) throw error("unterminated string");
                    char c = s.charAt(pos++);
                    if (c == '"') return sb.toString();
                    if (c < 0x20) {
                        pos--;
                        throw error("control character in a string");
                    }
                    if (c != '\\') {
                        sb.append(c);
                        continue;
                    }
                    if (pos >= s.length()) throw error("unterminated escape");
                    char e = s.charAt(pos++);
                    switch (e) {
                        case '"' -> sb.append('"');
                        case '\\' -> sb.append('\\');
                        case '/' -> sb.append('/');
                        case 'b' -> sb.append('\b');
                        case 'f' -> sb.append('\f');
                        case 'n' -> sb.append('\n');
                        case 'r' -> sb.append('\r');
                        case 't' -> sb.append('\t');
                        // \\uD83D\\uDE00 gives two chars, which Java keeps as the surrogate pair
                        // it is; a lone surrogate stays a lone char.
                        case 'u' -> sb.append(hex4());
                        default -> {
                            pos--;
                            throw error("bad escape \\" + e);
                        }
                    }
                }
            }

            char hex4() {
                if (pos + 4 > s.length()) throw error("short \\u escape");
                int v = 0;
                for (int i = 0; i < 4; i++) {
                    int d = Character.digit(s.charAt(pos + i), 16);
                    if (d < 0) throw error("bad \\u escape");
                    v = v * 16 + d;
                }
                pos += 4;
                return (char) v;
            }

            Object number() {
                int start = pos;
                if (s.charAt(pos) == '-') pos++;
                if (pos >= s.length()) throw error("bad number");
                if (s.charAt(pos) == '0') {
                    pos++;
                } else if (s.charAt(pos) >= '1' && s.charAt(pos) <= '9') {
                    while (pos < s.length() && Character.isDigit(s.charAt(pos)) && s.charAt(pos) < 128) pos++;
                } else {
                    throw error("bad number");
                }
                boolean integral = true;
                if (pos < s.length() && s.charAt(pos) == '.') {
                    integral = false;
                    pos++;
                    digits();
                }
                if (pos < s.length() && (s.charAt(pos) == 'e' || s.charAt(pos) == 'E')) {
                    integral = false;
                    pos++;
                    if (pos < s.length() && (s.charAt(pos) == '+' || s.charAt(pos) == '-')) pos++;
                    digits();
                }
                String text = s.substring(start, pos);
                if (integral) {
                    BigInteger big = new BigInteger(text);
                    return big.bitLength() < 64 ? (Object) big.longValue() : big;
                }
                return Double.parseDouble(text);
            }

            void digits() {
                int start = pos;
                while (pos < s.length() && s.charAt(pos) >= '0' && s.charAt(pos) <= '9') pos++;
                if (pos == start) throw error("bad number");
            }
        }
    }

    // --- the view check ---------------------------------------------------------------------

    record SchemaSource(Object schema, String where, String problem) {}

    /**
     * A small JSON Schema validator, enough for schemas/conformance/driver-view.schema.json:
     * type (a name or a list, "integer" and "null" included), enum, const, properties, required,
     * additionalProperties, items (a schema or a boolean), $ref to local pointers (#/$defs/...),
     * anyOf, oneOf, allOf, minimum, maximum. Annotations are ignored. The allowed values
     * (connection states, authors, statuses, handoff states) come from the schema itself.
     *
     * <p>Where the schema comes from, in order: the file named by DRIVER_VIEW_SCHEMA (when set
     * and unreadable, one log line and no validation, as in the JS helper); the repository's
     * file, found by walking up from where this class was loaded; else {@link #BUILT_IN}, a copy
     * of that file kept here because a compiled driver usually runs far from the repository
     * (the helper's tests check the copy still equals the file).
     */
    public static final class ViewSchema {
        private ViewSchema() {}

        static final String RELATIVE = "schemas/conformance/driver-view.schema.json";

        private static final Set<String> KNOWN = Set.of(
                "type", "enum", "const", "properties", "required", "additionalProperties", "items", "$ref",
                "anyOf", "oneOf", "allOf", "minimum", "maximum",
                "$schema", "$id", "$defs", "definitions", "title", "description", "default", "format",
                "examples", "$comment");

        static SchemaSource load(Map<String, String> environment) {
            String override = environment.get("DRIVER_VIEW_SCHEMA");
            if (override != null && !override.isEmpty()) {
                Path path = Paths.get(override).toAbsolutePath();
                try {
                    return new SchemaSource(Json.parse(Files.readString(path)), path.toString(), null);
                } catch (NoSuchFileException e) {
                    return new SchemaSource(null, path.toString(),
                            "driver-view schema not found (" + path + "): views are not validated");
                } catch (IOException | RuntimeException e) {
                    return new SchemaSource(null, path.toString(),
                            "driver-view schema " + e.getMessage() + " (" + path + "): views are not validated");
                }
            }
            Path found = findInRepository();
            if (found != null) {
                try {
                    return new SchemaSource(Json.parse(Files.readString(found)), found.toString(), null);
                } catch (IOException | RuntimeException e) {
                    // fall through to the built-in copy
                }
            }
            return new SchemaSource(Json.parse(BUILT_IN), "built-in copy", null);
        }

        /** The schema file above the directory or jar this class was loaded from, if any. */
        static Path findInRepository() {
            try {
                var source = MessagingDriver.class.getProtectionDomain().getCodeSource();
                if (source == null) return null;
                Path dir = Paths.get(source.getLocation().toURI()).toAbsolutePath();
                for (Path p = dir; p != null; p = p.getParent()) {
                    Path candidate = p.resolve(RELATIVE);
                    if (Files.isRegularFile(candidate)) return candidate;
                }
            } catch (Exception ignored) {
                // no code source location: use the built-in copy
            }
            return null;
        }

        /** The problems of {@code value} against {@code schema}, as "pointer: problem" strings. */
        public static List<String> validate(Object value, Object schema) {
            List<String> problems = new ArrayList<>();
            check(schema, schema, value, "", problems);
            return problems;
        }

        /** The problems of a view against the schema the helper uses (empty when valid). */
        public static List<String> validateView(Object view) {
            SchemaSource source = load(System.getenv());
            if (source.schema() == null) return List.of();
            return validate(Json.parse(Json.write(view)), source.schema());
        }

        private static String at(String pointer) { return pointer.isEmpty() ? "(root)" : pointer; }

        private static String escape(String key) { return key.replace("~", "~0").replace("/", "~1"); }

        static String typeOf(Object v) {
            if (v == null) return "null";
            if (v instanceof Boolean) return "boolean";
            if (v instanceof String) return "string";
            if (v instanceof Map) return "object";
            if (v instanceof List) return "array";
            if (v instanceof Number n) {
                if (v instanceof Double || v instanceof Float) {
                    double d = n.doubleValue();
                    return d == Math.rint(d) && !Double.isInfinite(d) ? "integer" : "number";
                }
                if (v instanceof BigDecimal b) return b.stripTrailingZeros().scale() <= 0 ? "integer" : "number";
                return "integer";
            }
            return v.getClass().getSimpleName();
        }

        private static boolean hasType(Object v, String type) {
            String actual = typeOf(v);
            if (type.equals("number")) return actual.equals("number") || actual.equals("integer");
            return actual.equals(type);
        }

        private static Object resolve(Object root, String ref) {
            if (!ref.startsWith("#")) throw new IllegalArgumentException("unsupported $ref " + ref);
            Object node = root;
            String rest = ref.substring(1);
            if (!rest.isEmpty()) {
                for (String raw : rest.substring(1).split("/", -1)) {
                    String key = java.net.URLDecoder.decode(raw.replace("+", "%2B"), StandardCharsets.UTF_8)
                            .replace("~1", "/").replace("~0", "~");
                    node = node instanceof Map<?, ?> m ? m.get(key) : null;
                }
            }
            if (node == null) throw new IllegalArgumentException("unresolvable $ref " + ref);
            return node;
        }

        private static List<?> list(Object v) { return v instanceof List<?> l ? l : List.of(); }

        private static int compare(Object a, Object b) {
            return new BigDecimal(a.toString()).compareTo(new BigDecimal(b.toString()));
        }

        @SuppressWarnings("unchecked")
        private static void check(Object root, Object schemaNode, Object value, String pointer, List<String> problems) {
            if (schemaNode == null || Boolean.TRUE.equals(schemaNode)) return;
            if (Boolean.FALSE.equals(schemaNode)) {
                problems.add(at(pointer) + ": not allowed here");
                return;
            }
            if (!(schemaNode instanceof Map)) return;
            Map<String, Object> schema = (Map<String, Object>) schemaNode;
            if (schema.get("$ref") instanceof String ref) check(root, resolve(root, ref), value, pointer, problems);
            if (schema.containsKey("type")) {
                Object t = schema.get("type");
                List<String> types = new ArrayList<>();
                if (t instanceof List<?> l) for (Object o : l) types.add(String.valueOf(o));
                else types.add(String.valueOf(t));
                if (types.stream().noneMatch(type -> hasType(value, type))) {
                    problems.add(at(pointer) + ": expected " + String.join(" or ", types) + ", got " + typeOf(value));
                    return; // the other keywords would only repeat it
                }
            }
            if (schema.get("enum") instanceof List<?> allowed && !containsJson(allowed, value)) {
                List<String> names = new ArrayList<>();
                for (Object o : allowed) names.add(Json.write(o));
                problems.add(at(pointer) + ": " + Json.write(value) + " is not one of " + String.join(", ", names));
            }
            if (schema.containsKey("const") && !jsonEquals(schema.get("const"), value)) {
                problems.add(at(pointer) + ": must be " + Json.write(schema.get("const")));
            }
            if (value instanceof Number) {
                if (schema.get("minimum") instanceof Number min && compare(value, min) < 0) {
                    problems.add(at(pointer) + ": " + Json.write(value) + " is less than " + Json.write(min));
                }
                if (schema.get("maximum") instanceof Number max && compare(value, max) > 0) {
                    problems.add(at(pointer) + ": " + Json.write(value) + " is more than " + Json.write(max));
                }
            }
            if (value instanceof Map<?, ?> object) {
                for (Object key : list(schema.get("required"))) {
                    if (!object.containsKey(key)) {
                        problems.add(at(pointer) + ": missing required property " + Json.write(key));
                    }
                }
                Map<String, Object> properties = schema.get("properties") instanceof Map<?, ?> p
                        ? (Map<String, Object>) p : Map.of();
                Object additional = schema.get("additionalProperties");
                for (Map.Entry<?, ?> e : object.entrySet()) {
                    String key = String.valueOf(e.getKey());
                    String child = pointer + "/" + escape(key);
                    if (properties.containsKey(key)) check(root, properties.get(key), e.getValue(), child, problems);
                    else if (Boolean.FALSE.equals(additional)) problems.add(at(child) + ": property not allowed");
                    else if (additional != null) check(root, additional, e.getValue(), child, problems);
                }
            }
            if (value instanceof List<?> items && schema.containsKey("items")) {
                for (int i = 0; i < items.size(); i++) {
                    check(root, schema.get("items"), items.get(i), pointer + "/" + i, problems);
                }
            }
            for (Object sub : list(schema.get("allOf"))) check(root, sub, value, pointer, problems);
            if (schema.get("anyOf") instanceof List<?> any) alternatives(root, any, value, pointer, problems, false);
            if (schema.get("oneOf") instanceof List<?> one) alternatives(root, one, value, pointer, problems, true);
        }

        private static void alternatives(Object root, List<?> alternatives, Object value, String pointer,
                                         List<String> problems, boolean exactlyOne) {
            List<List<String>> results = new ArrayList<>();
            int matches = 0;
            for (Object sub : alternatives) {
                List<String> found = new ArrayList<>();
                check(root, sub, value, pointer, found);
                results.add(found);
                if (found.isEmpty()) matches++;
            }
            if (exactlyOne && matches > 1) {
                problems.add(at(pointer) + ": matches " + matches + " of the oneOf alternatives, not exactly one");
                return;
            }
            if (matches > 0) return;
            // Report the alternatives whose type fits the value (e.g. the enum of "string or
            // null" for a wrong string); when none fits, one line naming the expected types.
            String prefix = at(pointer) + ": expected ";
            List<List<String>> relevant = new ArrayList<>();
            for (List<String> r : results) {
                if (!(r.size() == 1 && r.get(0).startsWith(prefix))) relevant.add(r);
            }
            if (!relevant.isEmpty()) {
                for (List<String> r : relevant) problems.addAll(r);
                return;
            }
            Set<String> expected = new LinkedHashSet<>();
            for (List<String> r : results) expected.add(r.get(0).substring(prefix.length()).replaceAll(", got \\S+$", ""));
            problems.add(prefix + String.join(" or ", expected) + ", got " + typeOf(value));
        }

        private static boolean containsJson(Collection<?> allowed, Object value) {
            for (Object a : allowed) if (jsonEquals(a, value)) return true;
            return false;
        }

        /** Equality of two parsed JSON values (numbers by value: 1 equals 1.0). */
        static boolean jsonEquals(Object a, Object b) {
            if (a == null || b == null) return a == b;
            if (a instanceof Number && b instanceof Number) return compare(a, b) == 0;
            if (a instanceof Map<?, ?> ma && b instanceof Map<?, ?> mb) {
                if (ma.size() != mb.size()) return false;
                for (Map.Entry<?, ?> e : ma.entrySet()) {
                    if (!mb.containsKey(e.getKey()) || !jsonEquals(e.getValue(), mb.get(e.getKey()))) return false;
                }
                return true;
            }
            if (a instanceof List<?> la && b instanceof List<?> lb) {
                if (la.size() != lb.size()) return false;
                for (int i = 0; i < la.size(); i++) if (!jsonEquals(la.get(i), lb.get(i))) return false;
                return true;
            }
            return a.equals(b);
        }

        /** Keywords in {@code schema} this validator does not implement (they would be ignored). */
        public static Set<String> unknownKeywords(Object schema) {
            Set<String> found = new java.util.TreeSet<>();
            walk(schema, found);
            return found;
        }

        private static void walk(Object node, Set<String> found) {
            if (!(node instanceof Map<?, ?> map)) return;
            for (Map.Entry<?, ?> e : map.entrySet()) {
                String key = String.valueOf(e.getKey());
                Object sub = e.getValue();
                if (!KNOWN.contains(key)) found.add(key);
                switch (key) {
                    case "properties", "$defs", "definitions" -> {
                        if (sub instanceof Map<?, ?> m) for (Object s : m.values()) walk(s, found);
                    }
                    case "anyOf", "oneOf", "allOf" -> {
                        for (Object s : list(sub)) walk(s, found);
                    }
                    case "items", "additionalProperties" -> walk(sub, found);
                    default -> { }
                }
            }
        }

        /**
         * A copy of schemas/conformance/driver-view.schema.json (descriptions dropped), used when
         * the file cannot be found. Keep it equal to the file, descriptions aside:
         * drivers/jvm/test checks it.
         */
        public static final String BUILT_IN = """
            {"type":"object","properties":{
             "connection":{"anyOf":[{"$ref":"#/$defs/ConnectionState"},{"type":"null"}]},
             "session_id":{"type":["string","null"]},
             "agent":{"anyOf":[{"$ref":"#/$defs/ViewAgent"},{"type":"null"}]},
             "live_agent":{"anyOf":[{"$ref":"#/$defs/ViewLiveAgent"},{"type":"null"}]},
             "typing":{"anyOf":[{"$ref":"#/$defs/ViewTyping"},{"type":"null"}]},
             "messages":{"type":["array","null"],"items":{"$ref":"#/$defs/ViewMessage"}},
             "handoff":{"anyOf":[{"$ref":"#/$defs/HandoffState"},{"type":"null"}]},
             "queue":{"anyOf":[{"$ref":"#/$defs/ViewQueue"},{"type":"null"}]},
             "client_handoff":{"anyOf":[{"$ref":"#/$defs/ViewClientHandoff"},{"type":"null"}]},
             "language":{"type":["string","null"]},
             "system_messages":{"type":["array","null"],"items":{"$ref":"#/$defs/ViewSystemMessage"}},
             "ended":{"anyOf":[{"$ref":"#/$defs/ViewEnded"},{"type":"null"}]}},
            "$defs":{
             "ConnectionState":{"type":"string","enum":["connecting","open","reconnecting","closed"]},
             "ViewAgent":{"type":"object","properties":{"name":{"type":"string"},"avatar_url":{"type":"string"}},
              "required":["name","avatar_url"]},
             "ViewLiveAgent":{"type":"object","properties":{"id":{"type":"string"},"name":{"type":"string"},
              "avatar_url":{"type":"string"}},"required":["id","name","avatar_url"]},
             "ViewTyping":{"type":"object","properties":{"agent":{"type":"boolean"},"live_agent":{"type":"boolean"}},
              "required":["agent","live_agent"]},
             "ViewMessage":{"type":"object","properties":{
              "message_id":{"type":["string","null"]},
              "from":{"$ref":"#/$defs/Author"},
              "text":{"type":"string"},
              "attachments":{"type":"array","items":true,"default":[]},
              "suggestions":{"type":"array","items":{"type":"string"},"default":[]},
              "complete":{"type":"boolean"},
              "status":{"anyOf":[{"$ref":"#/$defs/MessageStatus"},{"type":"null"}]}},
              "required":["from","text","complete"]},
             "Author":{"type":"string","enum":["user","agent","live_agent"]},
             "MessageStatus":{"type":"string","enum":["sending","sent","failed"]},
             "HandoffState":{"type":"string","enum":["none","triggered","accepted","live","client_required",
              "failed","timeout","ended"]},
             "ViewQueue":{"type":"object","properties":{"queue_name":{"type":["string","null"]},
              "position_in_queue":{"type":["integer","null"],"format":"uint64","minimum":0},
              "estimated_wait_seconds":{"type":["integer","null"],"format":"uint64","minimum":0}}},
             "ViewClientHandoff":{"type":"object","properties":{"reason":{"type":"string"},
              "queue_name":{"type":"string"}},"required":["reason","queue_name"]},
             "ViewSystemMessage":{"type":"object","properties":{"level":{"type":"string"},
              "message":{"type":"string"}},"required":["level","message"]},
             "ViewEnded":{"type":"object","properties":{"reason":{"type":"string"}},"required":["reason"]}}}
            """;
    }
}
