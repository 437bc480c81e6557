// The helper's own tests, JDK only (no JUnit): a plain main that runs every test, prints one line
// per test and exits 1 if any failed. From the repository root:
//
//   javac -d /tmp/jvm-test drivers/jvm/MessagingDriver.java drivers/jvm/test/*.java
//   java -cp /tmp/jvm-test MessagingDriverTest            # all tests
//   java -cp /tmp/jvm-test MessagingDriverTest json       # tests whose name contains "json"
//
// In-process tests drive MessagingDriver.Loop directly; process tests start FixtureDriver as a
// child JVM (every wait is bounded) for what only a process shows: exit statuses, the real
// stdout, uncaught exceptions in other threads.

import messaging.driver.MessagingDriver;
import messaging.driver.MessagingDriver.Adapter;
import messaging.driver.MessagingDriver.Env;
import messaging.driver.MessagingDriver.Json;
import messaging.driver.MessagingDriver.Loop;
import messaging.driver.MessagingDriver.ViewSchema;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.StringReader;
import java.io.Writer;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

public final class MessagingDriverTest {
    private interface Body { void run() throws Exception; }
    private record Test(String name, Body body) {}

    private static final List<Test> TESTS = new ArrayList<>();
    private static void test(String name, Body body) { TESTS.add(new Test(name, body)); }

    public static void main(String[] args) throws Exception {
        jsonTests();
        loopTests();
        validatorTests();
        processTests();
        int failed = 0;
        int ran = 0;
        long start = System.nanoTime();
        for (Test t : TESTS) {
            if (args.length > 0 && java.util.Arrays.stream(args).noneMatch(t.name()::contains)) continue;
            ran++;
            try {
                t.body().run();
                System.out.println("ok   " + t.name());
            } catch (Throwable e) {
                failed++;
                System.out.println("FAIL " + t.name() + ": " + e);
            }
        }
        System.out.printf("%d tests, %d passed, %d failed (%.1f s)%n", ran, ran - failed, failed,
                (System.nanoTime() - start) / 1e9);
        System.exit(failed == 0 ? 0 : 1);
    }

    // --- assertions -------------------------------------------------------------------------

    static void check(boolean condition, String what) {
        if (!condition) throw new AssertionError(what);
    }

    static void eq(Object expected, Object actual) {
        if (!java.util.Objects.equals(expected, actual)) {
            throw new AssertionError("expected <" + expected + "> but got <" + actual + ">");
        }
    }

    static void throwsParse(String text) {
        try {
            Object v = Json.parse(text);
            throw new AssertionError("parsed invalid JSON " + text + " as " + v);
        } catch (Json.ParseException expected) {
            // good
        }
    }

    static <K, V> Map<K, V> map(Object... kv) {
        Map<K, V> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            @SuppressWarnings("unchecked") K k = (K) kv[i];
            @SuppressWarnings("unchecked") V v = (V) kv[i + 1];
            m.put(k, v);
        }
        return m;
    }

    static Map<String, Object> obj(String json) {
        @SuppressWarnings("unchecked") Map<String, Object> m = (Map<String, Object>) Json.parse(json);
        return m;
    }

    // --- JSON -------------------------------------------------------------------------------

    static void jsonTests() {
        test("json: parses every kind of value, keeping key order", () -> {
            Object v = Json.parse(" {\"b\": [1, -2, 3.5, true, false, null, \"x\"], \"a\": {}, \"c\": []} ");
            Map<String, Object> m = obj(Json.write(v));
            eq(List.of("b", "a", "c"), new ArrayList<>(m.keySet()));
            List<Object> b = new ArrayList<>(List.of(1L, -2L, 3.5, true, false));
            b.add(null);
            b.add("x");
            eq(b, m.get("b"));
            eq(Map.of(), m.get("a"));
            eq(List.of(), m.get("c"));
        });

        test("json: string escapes are decoded", () -> {
            eq("\" \\ / \b \f \n \r \t", Json.parse("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\""));
            eq("A\u00e9\u4e2d", Json.parse("\"\\u0041\\u00E9\\u4e2d\""));
            eq("caf\u00e9 \u4e2d", Json.parse("\"caf\u00e9 \u4e2d\"")); // raw UTF-16 kept
        });

        test("json: \\u surrogate pairs make one code point; lone surrogates survive", () -> {
            String smile = (String) Json.parse("\"\\ud83d\\ude00\"");
            eq(1, smile.codePointCount(0, smile.length()));
            eq(0x1F600, smile.codePointAt(0));
            eq("\ud83d\ude00", Json.parse("\"\ud83d\ude00\"")); // the raw pair, too
            String lone = (String) Json.parse("\"a\\ud800b\"");
            eq(3, lone.length());
            eq('\ud800', lone.charAt(1));
            // Written back, a lone surrogate is an escape (UTF-8 cannot carry it), a pair is not.
            eq("\"a\\ud800b\"", Json.write(lone));
            eq("\"\ud83d\ude00\"", Json.write(smile));
        });

        test("json: the writer escapes quotes, backslashes and control characters", () -> {
            eq("\"q\\\"b\\\\n\\nt\\tc\\u0001d\\u001f\"", Json.write("q\"b\\n\nt\tc\u0001d\u001f"));
            eq("\"\\b\\f\\r\"", Json.write("\b\f\r"));
            eq("\"\u00e9\u4e2d/\"", Json.write("\u00e9\u4e2d/"));
        });

        test("json: random strings round-trip through write and parse", () -> {
            Random random = new Random(42);
            char[] pool = {'a', '"', '\\', '/', '\n', '\r', '\t', '\b', '\f', '\u0000', '\u001f', '\u007f',
                '\u00e9', '\u2028', '\ud83d', '\ude00', '\ud800', '\udfff', '\uffff', ' '};
            for (int n = 0; n < 2000; n++) {
                StringBuilder sb = new StringBuilder();
                int len = random.nextInt(12);
                for (int i = 0; i < len; i++) sb.append(pool[random.nextInt(pool.length)]);
                String s = sb.toString();
                String written = Json.write(List.of(s, Map.of(s, s)));
                // Everything written must also survive UTF-8 (that is how it goes on the wire).
                String wire = new String(written.getBytes(StandardCharsets.UTF_8), StandardCharsets.UTF_8);
                eq(List.of(s, Map.of(s, s)), Json.parse(wire));
            }
        });

        test("json: numbers: integers are Long (BigInteger beyond), the rest Double", () -> {
            eq(0L, Json.parse("0"));
            eq(-12L, Json.parse("-12"));
            eq(Long.MAX_VALUE, Json.parse("9223372036854775807"));
            eq(new BigInteger("9223372036854775808"), Json.parse("9223372036854775808"));
            eq(1.5, Json.parse("1.5"));
            eq(1000.0, Json.parse("1e3"));
            eq(-0.025, Json.parse("-2.5E-2"));
            eq("7", Json.write(7.0));
            eq("1.5", Json.write(1.5));
            eq("[1,2,3]", Json.write(new int[] {1, 2, 3}));
            eq(1.0E300, Json.parse(Json.write(1.0E300)));
            try {
                Json.write(Double.NaN);
                throw new AssertionError("wrote NaN");
            } catch (IllegalArgumentException expected) {
                // good
            }
        });

        test("json: invalid documents are rejected", () -> {
            for (String bad : new String[] {"", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "[1 2]",
                "{\"a\":1}x", "\"abc", "\"a\\x\"", "\"a\nb\"", "\"\\u12\"", "\"\\u12g4\"", "01", "-", "1.",
                ".5", "1e", "+1", "tru", "nul", "NaN", "'a'"}) {
                throwsParse(bad);
            }
        });

        test("json: the writer handles maps, lists, arrays, enums, chars and null", () -> {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("n", null);
            m.put("t", true);
            m.put("l", List.of(1, 2L, "s"));
            m.put("a", new String[] {"x"});
            m.put("e", TimeUnit.SECONDS);
            m.put("c", 'c');
            eq("{\"n\":null,\"t\":true,\"l\":[1,2,\"s\"],\"a\":[\"x\"],\"e\":\"SECONDS\",\"c\":\"c\"}", Json.write(m));
            try {
                Json.write(new Object());
                throw new AssertionError("wrote an Object");
            } catch (IllegalArgumentException expected) {
                // good
            }
        });

        test("env: the WebSocket URL is derived as a real SDK does", () -> {
            eq("ws://127.0.0.1:4/ws", Env.wsUrlFrom("http://127.0.0.1:4"));
            eq("ws://127.0.0.1:4/ws", Env.wsUrlFrom("http://127.0.0.1:4//"));
            eq("wss://h.example/base/ws", Env.wsUrlFrom("https://h.example/base/"));
            eq(null, Env.wsUrlFrom(null));
            Env env = Env.from(Map.of("MESSAGING_BASE_URL", "http://x:1", "MESSAGING_CONNECTOR_TOKEN", "tok",
                    "MESSAGING_HOST", "h", "CONFORMANCE_CASE", "c"));
            eq(new Env("http://x:1", "ws://x:1/ws", "tok", "h", "c"), env);
            Env tls = Env.from(Map.of("MESSAGING_BASE_URL", "https://x:1", "MESSAGING_CA_FILE", "/ca.pem"));
            eq("wss://x:1/ws", tls.wsUrl());
            eq("/ca.pem", tls.caFile());
        });
    }

    // --- the loop, in process ---------------------------------------------------------------

    record Run(int status, List<String> lines) {
        List<Map<String, Object>> objects() {
            List<Map<String, Object>> out = new ArrayList<>();
            for (String l : lines) out.add(obj(l));
            return out;
        }

        List<Map<String, Object>> replies() {
            List<Map<String, Object>> out = new ArrayList<>();
            for (Map<String, Object> o : objects()) if (o.containsKey("re")) out.add(o);
            return out;
        }

        List<String> logs() {
            List<String> out = new ArrayList<>();
            for (Map<String, Object> o : objects()) if (o.containsKey("log")) out.add((String) o.get("log"));
            return out;
        }
    }

    static final Map<String, String> ENV = Map.of("MESSAGING_BASE_URL", "http://127.0.0.1:9",
            "MESSAGING_CONNECTOR_TOKEN", "tok", "MESSAGING_HOST", "app.example", "CONFORMANCE_CASE", "case-1");

    static Run loop(Adapter adapter, Map<String, String> env, String... commands) throws IOException {
        List<String> lines = new ArrayList<>();
        Loop loop = new Loop("fixture-sdk", "9.9.9", adapter, env, line -> {
            synchronized (lines) {
                lines.add(line);
            }
        });
        int status = loop.run(new BufferedReader(new StringReader(String.join("\n", commands) + "\n")));
        return new Run(status, lines);
    }

    static Run loop(String... commands) throws IOException {
        return loop(FixtureDriver.adapter(), ENV, commands);
    }

    static Map<String, Object> reply(Run run, long id) {
        for (Map<String, Object> r : run.replies()) if (Long.valueOf(id).equals(r.get("re"))) return r;
        throw new AssertionError("no reply to " + id + " in " + run.lines());
    }

    static void loopTests() {
        test("loop: the ready line comes first, then one reply per command, in order", () -> {
            Run run = loop("{\"id\":1,\"cmd\":\"start\",\"streaming\":true}", "{\"id\":2,\"cmd\":\"send\",\"text\":\"slow\"}",
                    "{\"id\":3,\"cmd\":\"send\",\"text\":\"fast\"}", "{\"id\":4,\"cmd\":\"end\"}",
                    "{\"id\":5,\"cmd\":\"view\"}", "{\"id\":6,\"cmd\":\"exit\"}");
            eq(map("ready", true, "name", "fixture-sdk", "version", "9.9.9"), run.objects().get(0));
            eq("{\"ready\":true,\"name\":\"fixture-sdk\",\"version\":\"9.9.9\"}", run.lines().get(0));
            List<Object> ids = new ArrayList<>();
            for (Map<String, Object> r : run.replies()) ids.add(r.get("re"));
            eq(List.of(1L, 2L, 3L, 4L, 5L, 6L), ids);
            for (Map<String, Object> r : run.replies()) eq(true, r.get("ok"));
            eq(List.of("re", "ok"), new ArrayList<>(reply(run, 4).keySet())); // nothing else on a plain ok
            eq(0, run.status());
        });

        test("loop: one command at a time (a slow command finishes before the next starts)", () -> {
            Run run = loop("{\"id\":1,\"cmd\":\"send\",\"text\":\"slow\"}", "{\"id\":2,\"cmd\":\"send\",\"text\":\"b\"}");
            List<String> seq = new ArrayList<>();
            for (Map<String, Object> o : run.objects()) {
                if (o.containsKey("log")) seq.add((String) o.get("log"));
                if (o.containsKey("re")) seq.add("reply " + o.get("re"));
            }
            eq(List.of("begin slow", "end slow", "reply 1", "begin b", "end b", "reply 2"), seq);
        });

        test("loop: fields reach the adapter; the context carries env and log", () -> {
            Run run = loop("{\"id\":1,\"cmd\":\"start\",\"streaming\":true}",
                    "{\"id\":2,\"cmd\":\"tap_suggestion\",\"message_id\":\"msg_9\",\"index\":2}");
            check(run.logs().get(0).startsWith("start streaming=true env="), run.logs().get(0));
            Map<String, Object> env = obj(run.logs().get(0).substring("start streaming=true env=".length()));
            eq("http://127.0.0.1:9", env.get("baseUrl"));
            eq("ws://127.0.0.1:9/ws", env.get("wsUrl"));
            eq("tok", env.get("connectorToken"));
            eq("app.example", env.get("host"));
            eq("case-1", env.get("caseId"));
            eq("tap msg_9 2", run.logs().get(1));
        });

        test("loop: a missing method or an unknown cmd is unsupported", () -> {
            Run run = loop("{\"id\":1,\"cmd\":\"typing\",\"state\":\"started\"}", "{\"id\":2,\"cmd\":\"restart\"}",
                    "{\"id\":3,\"cmd\":\"dance\"}", "{\"id\":4}", "{\"id\":5,\"cmd\":7}", "{\"id\":6,\"cmd\":\"send\",\"text\":\"a\"}");
            for (long id = 1; id <= 5; id++) eq(map("re", id, "unsupported", true), reply(run, id));
            eq(map("re", 6L, "ok", true), reply(run, 6));
        });

        test("loop: throwing Unsupported (also wrapped) is unsupported", () -> {
            Run run = loop("{\"id\":1,\"cmd\":\"send\",\"text\":\"unsupported\"}",
                    "{\"id\":2,\"cmd\":\"send\",\"text\":\"wrapped-unsupported\"}");
            eq(map("re", 1L, "unsupported", true), reply(run, 1));
            eq(map("re", 2L, "unsupported", true), reply(run, 2));
        });

        test("loop: an empty adapter answers unsupported, but exit is still ok and ends the loop", () -> {
            Run run = loop(new Adapter() { }, ENV, "{\"id\":1,\"cmd\":\"start\",\"streaming\":false}",
                    "{\"id\":2,\"cmd\":\"view\"}", "{\"id\":3,\"cmd\":\"exit\"}", "{\"id\":4,\"cmd\":\"send\",\"text\":\"late\"}");
            eq(map("re", 1L, "unsupported", true), reply(run, 1));
            eq(map("re", 2L, "unsupported", true), reply(run, 2));
            eq(map("re", 3L, "ok", true), reply(run, 3));
            eq(3, run.replies().size()); // nothing is read after exit
            eq(0, run.status());
        });

        test("loop: an exit that throws replies ok:false and still ends the loop with 0", () -> {
            Adapter adapter = new Adapter() {
                @Override
                public void exit(MessagingDriver.Command c, MessagingDriver.Ctx ctx) {
                    throw new IllegalStateException("socket already closed");
                }
            };
            Run run = loop(adapter, ENV, "{\"id\":1,\"cmd\":\"exit\"}", "{\"id\":2,\"cmd\":\"exit\"}");
            eq(List.of(map("re", 1L, "ok", false, "error", "socket already closed")), run.replies());
            eq(0, run.status());
        });

        test("loop: exceptions become ok:false with their message", () -> {
            Run run = loop("{\"id\":1,\"cmd\":\"send\",\"text\":\"boom\"}", "{\"id\":2,\"cmd\":\"send\",\"text\":\"no-message\"}",
                    "{\"id\":3,\"cmd\":\"send\",\"text\":\"wrapped\"}", "{\"id\":4,\"cmd\":\"send\",\"text\":\"checked\"}",
                    "{\"id\":5,\"cmd\":\"send\",\"text\":\"after\"}");
            eq(map("re", 1L, "ok", false, "error", "boom: the app shows this"), reply(run, 1));
            eq(map("re", 2L, "ok", false, "error", "IllegalStateException"), reply(run, 2));
            eq(map("re", 3L, "ok", false, "error", "socket closed"), reply(run, 3));
            eq(map("re", 4L, "ok", false, "error", "checked exceptions are errors too"), reply(run, 4));
            eq(map("re", 5L, "ok", true), reply(run, 5)); // and the driver carries on
        });

        test("loop: NotImplemented ends the loop with 89 and no reply", () -> {
            Run run = loop("{\"id\":1,\"cmd\":\"send\",\"text\":\"a\"}", "{\"id\":2,\"cmd\":\"send\",\"text\":\"not-implemented\"}",
                    "{\"id\":3,\"cmd\":\"send\",\"text\":\"b\"}");
            eq(89, run.status());
            eq(1, run.replies().size());
            eq(1L, run.replies().get(0).get("re"));
        });

        test("loop: end of input ends the loop with 0", () -> {
            Run run = loop("{\"id\":1,\"cmd\":\"send\",\"text\":\"a\"}");
            eq(0, run.status());
            eq(1, run.replies().size());
        });

        test("loop: a line that is not JSON or has no integer id gets a log line, no reply", () -> {
            Run run = loop("not json", "[1,2]", "{\"cmd\":\"view\"}", "{\"id\":\"7\",\"cmd\":\"view\"}", "{\"id\":1.5,\"cmd\":\"view\"}",
                    "", "   ", "{\"id\":8,\"cmd\":\"send\",\"text\":\"ok\"}");
            eq(1, run.replies().size());
            eq(8L, run.replies().get(0).get("re"));
            List<String> logs = run.logs();
            eq("not a command (not JSON): not json", logs.get(0));
            eq("not a command (no integer id): [1,2]", logs.get(1));
            eq("not a command (no integer id): {\"cmd\":\"view\"}", logs.get(2));
            eq("not a command (no integer id): {\"id\":\"7\",\"cmd\":\"view\"}", logs.get(3));
            eq("not a command (no integer id): {\"id\":1.5,\"cmd\":\"view\"}", logs.get(4));
        });

        test("loop: ctx.log writes {\"log\": text} lines, from any thread", () -> {
            Run run = loop("{\"id\":1,\"cmd\":\"send\",\"text\":\"log-from-thread\"}");
            eq(List.of("begin log-from-thread", "from another thread", "end log-from-thread"), run.logs());
            eq("{\"log\":\"begin log-from-thread\"}", run.lines().get(1));
        });

        test("loop: a valid view is replied as is", () -> {
            Run run = loop("{\"id\":1,\"cmd\":\"view\"}");
            Map<String, Object> r = reply(run, 1);
            eq(true, r.get("ok"));
            eq(obj(Json.write(FixtureDriver.validView())), r.get("view"));
            eq(List.of(), run.logs());
        });

        test("loop: an invalid view is logged and still replied ok", () -> {
            Run run = loop("{\"id\":1,\"cmd\":\"view\",\"fixture_view\":{\"connection\":\"online\",\"messages\":[{\"from\":\"user\",\"text\":\"x\",\"complete\":\"yes\"}]}}");
            Map<String, Object> r = reply(run, 1);
            eq(true, r.get("ok"));
            eq("online", ((Map<?, ?>) r.get("view")).get("connection"));
            eq(List.of("view does not match driver-view schema: /connection: \"online\" is not one of \"connecting\", "
                    + "\"open\", \"reconnecting\", \"closed\"; /messages/0/complete: expected boolean, got string"), run.logs());
        });

        test("loop: DRIVER_STRICT_VIEW=1 fails an invalid view", () -> {
            Map<String, String> env = new HashMap<>(ENV);
            env.put("DRIVER_STRICT_VIEW", "1");
            Run run = loop(FixtureDriver.adapter(), env, "{\"id\":1,\"cmd\":\"view\",\"fixture_view\":{\"handoff\":\"pending\"}}",
                    "{\"id\":2,\"cmd\":\"view\"}");
            eq(map("re", 1L, "ok", false, "error", "view does not match driver-view schema: /handoff: \"pending\" is not one of "
                    + "\"none\", \"triggered\", \"accepted\", \"live\", \"client_required\", \"failed\", \"timeout\", \"ended\""), reply(run, 1));
            eq(true, reply(run, 2).get("ok")); // a valid view still passes in strict mode
            eq(List.of(), run.logs());
        });

        test("loop: a view the writer cannot write is an error reply", () -> {
            Adapter adapter = new Adapter() {
                @Override
                public Object view(MessagingDriver.Command c, MessagingDriver.Ctx ctx) {
                    return Map.of("connection", new Object());
                }
            };
            Run run = loop(adapter, ENV, "{\"id\":1,\"cmd\":\"view\"}");
            eq(false, reply(run, 1).get("ok"));
            check(String.valueOf(reply(run, 1).get("error")).startsWith("cannot write java.lang.Object"), run.lines().toString());
        });

        test("loop: DRIVER_VIEW_SCHEMA replaces the schema; a missing one is logged and nothing is checked", () -> {
            Path dir = Files.createTempDirectory("jvm-driver-test");
            Path schema = dir.resolve("only-open.json");
            Files.writeString(schema, "{\"type\":\"object\",\"properties\":{\"connection\":{\"enum\":[\"open\"]}},\"wibble\":1}");
            Map<String, String> env = new HashMap<>(ENV);
            env.put("DRIVER_VIEW_SCHEMA", schema.toString());
            Run run = loop(FixtureDriver.adapter(), env, "{\"id\":1,\"cmd\":\"view\",\"fixture_view\":{\"connection\":\"closed\"}}");
            eq(List.of("driver-view schema: keywords not checked: wibble",
                    "view does not match driver-view schema: /connection: \"closed\" is not one of \"open\""), run.logs());
            env.put("DRIVER_VIEW_SCHEMA", dir.resolve("absent.json").toString());
            run = loop(FixtureDriver.adapter(), env, "{\"id\":1,\"cmd\":\"view\",\"fixture_view\":{\"connection\":\"online\"}}");
            eq(1, run.logs().size());
            check(run.logs().get(0).startsWith("driver-view schema not found ("), run.logs().get(0));
            check(run.logs().get(0).endsWith("absent.json): views are not validated"), run.logs().get(0));
            eq(map("connection", "online"), reply(run, 1).get("view"));
        });
    }

    // --- the validator ----------------------------------------------------------------------

    static Object repoSchema() throws IOException {
        for (Path p = Paths.get("").toAbsolutePath(); p != null; p = p.getParent()) {
            Path candidate = p.resolve("schemas/conformance/driver-view.schema.json");
            if (Files.isRegularFile(candidate)) return Json.parse(Files.readString(candidate));
        }
        throw new AssertionError("run the tests from inside the repository: schemas/conformance/driver-view.schema.json not found");
    }

    static Object builtIn() { return Json.parse(ViewSchema.BUILT_IN); }

    static List<String> problems(String viewJson) throws IOException {
        List<String> fromFile = ViewSchema.validate(Json.parse(viewJson), repoSchema());
        // The built-in copy must judge every view exactly as the file does.
        eq(fromFile, ViewSchema.validate(Json.parse(viewJson), builtIn()));
        return fromFile;
    }

    static Object withoutAnnotations(Object node) {
        if (node instanceof Map<?, ?> m) {
            Map<String, Object> out = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : m.entrySet()) {
                String k = String.valueOf(e.getKey());
                if (List.of("description", "title", "$schema", "$id").contains(k) && !(e.getValue() instanceof Map)) continue;
                out.put(k, withoutAnnotations(e.getValue()));
            }
            return out;
        }
        if (node instanceof List<?> l) {
            List<Object> out = new ArrayList<>();
            for (Object o : l) out.add(withoutAnnotations(o));
            return out;
        }
        return node;
    }

    static void validatorTests() {
        test("validator: the built-in schema equals the repository's file, annotations aside", () -> {
            eq(withoutAnnotations(repoSchema()), withoutAnnotations(builtIn()));
            eq(java.util.Set.of(), ViewSchema.unknownKeywords(repoSchema()));
        });

        test("validator: complete, minimal and empty views are valid", () -> {
            eq(List.of(), problems(Json.write(FixtureDriver.validView())));
            eq(List.of(), problems("{}"));
            eq(List.of(), problems("{\"connection\":null,\"messages\":null,\"queue\":{}}"));
            eq(List.of(), problems("{\"connection\":\"reconnecting\",\"handoff\":\"client_required\",\"live_agent\":{\"id\":\"a\",\"name\":\"S\",\"avatar_url\":\"u\"},"
                    + "\"queue\":{\"queue_name\":\"q\",\"position_in_queue\":3,\"estimated_wait_seconds\":null},"
                    + "\"client_handoff\":{\"reason\":\"POLICY\",\"queue_name\":\"q\"},\"language\":\"fr-FR\","
                    + "\"system_messages\":[{\"level\":\"L\",\"message\":\"m\"}],\"ended\":{\"reason\":\"REASON_USER_END\"},"
                    + "\"messages\":[{\"message_id\":null,\"from\":\"live_agent\",\"text\":\"\",\"complete\":false,\"status\":\"failed\","
                    + "\"attachments\":[{\"any\":\"thing\"},1],\"suggestions\":[]}]}"));
        });

        test("validator: every enum is checked (connection, handoff, from, status)", () -> {
            eq(List.of("/connection: \"online\" is not one of \"connecting\", \"open\", \"reconnecting\", \"closed\""),
                    problems("{\"connection\":\"online\"}"));
            eq(List.of("/handoff: \"queued\" is not one of \"none\", \"triggered\", \"accepted\", \"live\", \"client_required\", "
                    + "\"failed\", \"timeout\", \"ended\""), problems("{\"handoff\":\"queued\"}"));
            eq(List.of("/messages/0/from: \"bot\" is not one of \"user\", \"agent\", \"live_agent\""),
                    problems("{\"messages\":[{\"from\":\"bot\",\"text\":\"\",\"complete\":true}]}"));
            eq(List.of("/messages/0/status: \"delivered\" is not one of \"sending\", \"sent\", \"failed\""),
                    problems("{\"messages\":[{\"from\":\"user\",\"text\":\"\",\"complete\":true,\"status\":\"delivered\"}]}"));
        });

        test("validator: every field's type is checked", () -> {
            String[][] cases = {
                {"{\"connection\":1}", "/connection: expected string or null, got integer"},
                {"{\"session_id\":5}", "/session_id: expected string or null, got integer"},
                {"{\"agent\":\"Ada\"}", "/agent: expected object or null, got string"},
                {"{\"agent\":{\"name\":\"Ada\",\"avatar_url\":3}}", "/agent/avatar_url: expected string, got integer"},
                {"{\"live_agent\":{\"id\":1,\"name\":\"S\",\"avatar_url\":\"u\"}}", "/live_agent/id: expected string, got integer"},
                {"{\"typing\":{\"agent\":\"yes\",\"live_agent\":false}}", "/typing/agent: expected boolean, got string"},
                {"{\"typing\":{\"agent\":false,\"live_agent\":0}}", "/typing/live_agent: expected boolean, got integer"},
                {"{\"messages\":{}}", "/messages: expected array or null, got object"},
                {"{\"messages\":[{\"message_id\":7,\"from\":\"user\",\"text\":\"\",\"complete\":true}]}", "/messages/0/message_id: expected string or null, got integer"},
                {"{\"messages\":[{\"from\":\"user\",\"text\":null,\"complete\":true}]}", "/messages/0/text: expected string, got null"},
                {"{\"messages\":[{\"from\":\"user\",\"text\":\"\",\"complete\":1}]}", "/messages/0/complete: expected boolean, got integer"},
                {"{\"messages\":[{\"from\":\"user\",\"text\":\"\",\"complete\":true,\"attachments\":null}]}", "/messages/0/attachments: expected array, got null"},
                {"{\"messages\":[{\"from\":\"user\",\"text\":\"\",\"complete\":true,\"suggestions\":[1]}]}", "/messages/0/suggestions/0: expected string, got integer"},
                {"{\"messages\":[{\"from\":\"user\",\"text\":\"\",\"complete\":true,\"status\":true}]}", "/messages/0/status: expected string or null, got boolean"},
                {"{\"queue\":{\"position_in_queue\":1.5}}", "/queue/position_in_queue: expected integer or null, got number"},
                {"{\"queue\":{\"estimated_wait_seconds\":\"3\"}}", "/queue/estimated_wait_seconds: expected integer or null, got string"},
                {"{\"queue\":{\"queue_name\":false}}", "/queue/queue_name: expected string or null, got boolean"},
                {"{\"client_handoff\":{\"reason\":\"POLICY\",\"queue_name\":null}}", "/client_handoff/queue_name: expected string, got null"},
                {"{\"language\":[\"fr\"]}", "/language: expected string or null, got array"},
                {"{\"system_messages\":[{\"level\":1,\"message\":\"m\"}]}", "/system_messages/0/level: expected string, got integer"},
                {"{\"ended\":{\"reason\":null}}", "/ended/reason: expected string, got null"},
                {"{\"ended\":\"REASON_USER_END\"}", "/ended: expected object or null, got string"},
            };
            for (String[] c : cases) eq(List.of(c[1]), problems(c[0]));
        });

        test("validator: required properties and minimum", () -> {
            eq(List.of("/messages/0: missing required property \"text\""), problems("{\"messages\":[{\"from\":\"agent\",\"complete\":true}]}"));
            eq(List.of("/agent: missing required property \"avatar_url\""), problems("{\"agent\":{\"name\":\"Ada\"}}"));
            eq(List.of("/typing: missing required property \"agent\"", "/typing: missing required property \"live_agent\""), problems("{\"typing\":{}}"));
            eq(List.of("/queue/position_in_queue: -1 is less than 0"), problems("{\"queue\":{\"position_in_queue\":-1}}"));
            eq(List.of("/system_messages/0: missing required property \"message\""), problems("{\"system_messages\":[{\"level\":\"L\"}]}"));
        });

        test("validator: the root must be an object; several problems are all reported", () -> {
            eq(List.of("(root): expected object, got null"), problems("null"));
            eq(List.of("(root): expected object, got array"), problems("[]"));
            eq(3, problems("{\"connection\":\"x\",\"handoff\":\"y\",\"typing\":{\"agent\":1,\"live_agent\":false}}").size());
        });

        test("validator: the keywords beyond the view schema (const, oneOf, allOf, maximum, additionalProperties)", () -> {
            Object schema = Json.parse("{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
                    + "\"c\":{\"const\":\"k\"},\"o\":{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":0}]},"
                    + "\"a\":{\"allOf\":[{\"type\":\"integer\"},{\"maximum\":5}]},\"r\":{\"$ref\":\"#/definitions/x\"}},"
                    + "\"definitions\":{\"x\":{\"type\":\"boolean\"}}}");
            eq(List.of(), ViewSchema.validate(Json.parse("{\"c\":\"k\",\"o\":-1,\"a\":5,\"r\":true}"), schema));
            eq(List.of("/c: must be \"k\""), ViewSchema.validate(Json.parse("{\"c\":\"j\"}"), schema));
            eq(List.of("/o: matches 2 of the oneOf alternatives, not exactly one"), ViewSchema.validate(Json.parse("{\"o\":2}"), schema));
            eq(List.of("/a: 6 is more than 5"), ViewSchema.validate(Json.parse("{\"a\":6}"), schema));
            eq(List.of("/r: expected boolean, got string"), ViewSchema.validate(Json.parse("{\"r\":\"t\"}"), schema));
            eq(List.of("/z: property not allowed"), ViewSchema.validate(Json.parse("{\"z\":1}"), schema));
            eq(java.util.Set.of("patternProperties"), ViewSchema.unknownKeywords(Json.parse("{\"properties\":{\"a\":{\"patternProperties\":{}}}}")));
        });
    }

    // --- child processes --------------------------------------------------------------------

    /** A FixtureDriver child process with NDJSON on its pipes; every wait is bounded. */
    static final class Child implements AutoCloseable {
        final Process process;
        final Writer stdin;
        final BlockingQueue<String> stdout = new LinkedBlockingQueue<>();
        final StringBuffer stderr = new StringBuffer();

        Child(Map<String, String> env, String... args) throws IOException {
            String java = Paths.get(System.getProperty("java.home"), "bin", "java").toString();
            List<String> command = new ArrayList<>(List.of(java, "-cp", System.getProperty("java.class.path"), "FixtureDriver"));
            command.addAll(List.of(args));
            ProcessBuilder pb = new ProcessBuilder(command);
            pb.environment().remove("DRIVER_STRICT_VIEW");
            pb.environment().remove("DRIVER_VIEW_SCHEMA");
            pb.environment().putAll(env);
            process = pb.start();
            stdin = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
            pump(new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8)), stdout::add);
            pump(new BufferedReader(new InputStreamReader(process.getErrorStream(), StandardCharsets.UTF_8)),
                    line -> stderr.append(line).append('\n'));
        }

        private static void pump(BufferedReader reader, java.util.function.Consumer<String> sink) {
            Thread t = new Thread(() -> {
                try {
                    String line;
                    while ((line = reader.readLine()) != null) sink.accept(line);
                } catch (IOException ignored) {
                    // the child is gone
                }
            });
            t.setDaemon(true);
            t.start();
        }

        void send(String line) throws IOException {
            stdin.write(line + "\n");
            stdin.flush();
        }

        void closeStdin() throws IOException {
            stdin.close();
        }

        Map<String, Object> next() throws InterruptedException {
            String line = stdout.poll(10, TimeUnit.SECONDS);
            if (line == null) throw new AssertionError("no line from the driver within 10 s; stderr: " + stderr);
            return obj(line);
        }

        /** The next line that is not a log line. */
        Map<String, Object> nextReply() throws InterruptedException {
            while (true) {
                Map<String, Object> line = next();
                if (!line.containsKey("log")) return line;
            }
        }

        int exitStatus() throws InterruptedException {
            if (!process.waitFor(10, TimeUnit.SECONDS)) throw new AssertionError("the driver did not exit within 10 s");
            return process.exitValue();
        }

        @Override
        public void close() {
            process.destroyForcibly();
        }
    }

    static void processTests() {
        test("process: ready line, replies in order, exit 0 after exit (live SDK threads do not hold it)", () -> {
            try (Child c = new Child(ENV)) {
                eq(map("ready", true, "name", "fixture-sdk", "version", "9.9.9"), c.next());
                // All at once: the helper must still answer one at a time, in order.
                c.send("{\"id\":1,\"cmd\":\"send\",\"text\":\"slow\"}\n{\"id\":2,\"cmd\":\"typing\",\"state\":\"started\"}\n"
                        + "{\"id\":3,\"cmd\":\"send\",\"text\":\"boom\"}\n{\"id\":4,\"cmd\":\"view\"}\n{\"id\":5,\"cmd\":\"exit\"}");
                eq(map("re", 1L, "ok", true), c.nextReply());
                eq(map("re", 2L, "unsupported", true), c.nextReply());
                eq(map("re", 3L, "ok", false, "error", "boom: the app shows this"), c.nextReply());
                eq(4L, c.nextReply().get("re"));
                eq(map("re", 5L, "ok", true), c.nextReply());
                eq(0, c.exitStatus());
            }
        });

        test("process: stdin closing ends the driver with 0", () -> {
            try (Child c = new Child(ENV)) {
                c.next();
                c.send("{\"id\":1,\"cmd\":\"send\",\"text\":\"slow\"}");
                c.closeStdin();
                eq(map("re", 1L, "ok", true), c.nextReply()); // the pending command is answered first
                eq(0, c.exitStatus());
            }
        });

        test("process: an empty adapter still exits 0 on exit", () -> {
            try (Child c = new Child(ENV, "empty")) {
                c.next();
                c.send("{\"id\":1,\"cmd\":\"start\",\"streaming\":false}");
                eq(map("re", 1L, "unsupported", true), c.nextReply());
                c.send("{\"id\":2,\"cmd\":\"exit\"}");
                eq(map("re", 2L, "ok", true), c.nextReply());
                eq(0, c.exitStatus());
            }
        });

        for (String how : List.of("not-implemented", "not-implemented-call", "uncaught-not-implemented")) {
            test("process: exit 89 with no reply (" + how + ")", () -> {
                try (Child c = new Child(ENV)) {
                    c.next();
                    c.send("{\"id\":1,\"cmd\":\"send\",\"text\":\"" + how + "\"}");
                    int status = c.exitStatus();
                    eq(89, status);
                    Thread.sleep(100); // let the pumps drain
                    for (String line : c.stdout) check(!obj(line).containsKey("re") || !how.startsWith("not-implemented"),
                            "a reply was written: " + line);
                    check(c.stderr.toString().contains("not implemented"), "stderr: " + c.stderr);
                }
            });
        }

        test("process: an uncaught exception in another thread exits 1 with its stack on stderr", () -> {
            try (Child c = new Child(ENV)) {
                c.next();
                c.send("{\"id\":1,\"cmd\":\"send\",\"text\":\"uncaught\"}");
                eq(1, c.exitStatus());
                Thread.sleep(100);
                check(c.stderr.toString().contains("escaped from a thread"), "stderr: " + c.stderr);
            }
        });

        test("process: what the SDK prints with System.out goes to stderr, not into the framing", () -> {
            try (Child c = new Child(ENV)) {
                c.next();
                c.send("{\"id\":1,\"cmd\":\"send\",\"text\":\"print\"}");
                eq(map("log", "begin print"), c.next());
                eq(map("log", "end print"), c.next());
                eq(map("re", 1L, "ok", true), c.next());
                c.send("{\"id\":2,\"cmd\":\"exit\"}");
                eq(map("log", "exit called"), c.next());
                eq(map("re", 2L, "ok", true), c.next());
                eq(0, c.exitStatus());
                Thread.sleep(100);
                check(c.stderr.toString().contains("noise an SDK printed"), "stderr: " + c.stderr);
            }
        });

        test("process: UTF-8 both ways, and strict mode from the environment", () -> {
            Map<String, String> env = new HashMap<>(ENV);
            env.put("DRIVER_STRICT_VIEW", "1");
            try (Child c = new Child(env)) {
                c.next();
                c.send("{\"id\":1,\"cmd\":\"send\",\"text\":\"caf\u00e9 \ud83d\ude00 \\u4e2d\"}");
                eq(map("log", "begin caf\u00e9 \ud83d\ude00 \u4e2d"), c.next());
                c.nextReply();
                c.send("{\"id\":2,\"cmd\":\"view\",\"fixture_view\":{\"connection\":\"up\"}}");
                Map<String, Object> r = c.nextReply();
                eq(false, r.get("ok"));
                check(String.valueOf(r.get("error")).startsWith("view does not match driver-view schema: /connection"), r.toString());
                c.send("{\"id\":3,\"cmd\":\"exit\"}");
                c.nextReply();
                eq(0, c.exitStatus());
            }
        });
    }
}
