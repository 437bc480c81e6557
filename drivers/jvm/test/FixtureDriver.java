// A tiny adapter for the helper's tests, run in process (MessagingDriverTest builds a Loop on
// adapter()) and as a child process (main). What it does is steered by the commands themselves:
// `send` looks at its text, `view` answers the command's `fixture_view` field (an additive field
// the contract allows). It has no `typing` or `restart` on purpose.
//
//   java -cp <out> FixtureDriver          the adapter below
//   java -cp <out> FixtureDriver empty    an adapter with no methods at all

import messaging.driver.MessagingDriver;
import messaging.driver.MessagingDriver.Adapter;
import messaging.driver.MessagingDriver.Command;
import messaging.driver.MessagingDriver.Ctx;
import messaging.driver.MessagingDriver.Json;
import messaging.driver.MessagingDriver.NotImplemented;
import messaging.driver.MessagingDriver.Unsupported;

import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionException;

public final class FixtureDriver {
    private FixtureDriver() {}

    public static void main(String[] args) {
        // Like a live SDK (sockets, heartbeat timers), a non-daemon thread keeps the JVM alive:
        // only the helper's own exits end the process.
        Thread keepAlive = new Thread(() -> {
            try {
                Thread.sleep(Long.MAX_VALUE);
            } catch (InterruptedException ignored) {
                // exit
            }
        }, "fixture-keep-alive");
        keepAlive.start();
        boolean empty = args.length > 0 && args[0].equals("empty");
        MessagingDriver.run("fixture-sdk", "9.9.9", empty ? new Adapter() { } : adapter());
    }

    static Map<String, Object> validView() {
        Map<String, Object> view = new LinkedHashMap<>();
        view.put("connection", "open");
        view.put("session_id", "ses_1");
        view.put("agent", Map.of("name", "Ada", "avatar_url", "https://a/x.png"));
        view.put("live_agent", null);
        view.put("typing", Map.of("agent", false, "live_agent", false));
        Map<String, Object> message = new LinkedHashMap<>();
        message.put("message_id", "msg_1");
        message.put("from", "agent");
        message.put("text", "hi");
        message.put("attachments", List.of());
        message.put("suggestions", List.of("yes"));
        message.put("complete", true);
        message.put("status", null);
        List<Object> messages = new ArrayList<>();
        messages.add(message);
        view.put("messages", messages);
        view.put("handoff", "none");
        view.put("queue", null);
        view.put("client_handoff", null);
        view.put("language", null);
        view.put("system_messages", List.of());
        view.put("ended", null);
        return view;
    }

    static Adapter adapter() {
        return new Adapter() {
            @Override
            public void start(Command c, Ctx ctx) {
                ctx.log("start streaming=" + c.streaming() + " env=" + Json.write(Map.of(
                        "baseUrl", String.valueOf(ctx.env().baseUrl()),
                        "wsUrl", String.valueOf(ctx.env().wsUrl()),
                        "connectorToken", String.valueOf(ctx.env().connectorToken()),
                        "host", String.valueOf(ctx.env().host()),
                        "caseId", String.valueOf(ctx.env().caseId()))));
            }

            @Override
            public void send(Command c, Ctx ctx) throws Exception {
                String text = c.text();
                ctx.log("begin " + text);
                switch (String.valueOf(text)) {
                    case "slow" -> Thread.sleep(300);
                    case "boom" -> throw new RuntimeException("boom: the app shows this");
                    case "no-message" -> throw new IllegalStateException();
                    case "wrapped" -> throw new CompletionException(new IOException("socket closed"));
                    case "checked" -> throw new IOException("checked exceptions are errors too");
                    case "unsupported" -> throw new Unsupported("no sending here");
                    case "wrapped-unsupported" -> throw new CompletionException(new Unsupported("deep"));
                    case "not-implemented" -> throw new NotImplemented("cannot run this case");
                    case "not-implemented-call" -> MessagingDriver.notImplemented("called the helper");
                    case "uncaught" -> later(() -> { throw new IllegalStateException("escaped from a thread"); });
                    case "uncaught-not-implemented" -> later(() -> { throw new NotImplemented("from a thread"); });
                    case "print" -> System.out.println("noise an SDK printed");
                    case "log-from-thread" -> {
                        Thread t = new Thread(() -> ctx.log("from another thread"));
                        t.start();
                        t.join();
                    }
                    default -> { }
                }
                ctx.log("end " + text);
            }

            @Override
            public void tapSuggestion(Command c, Ctx ctx) {
                ctx.log("tap " + c.messageId() + " " + c.index());
            }

            @Override
            public void end(Command c, Ctx ctx) {
                // returns nothing: the reply is plain ok
            }

            @Override
            public Object view(Command c, Ctx ctx) {
                return c.has("fixture_view") ? c.get("fixture_view") : validView();
            }

            @Override
            public void exit(Command c, Ctx ctx) {
                ctx.log("exit called");
            }
        };
    }

    private static void later(Runnable body) {
        Thread t = new Thread(() -> {
            try {
                Thread.sleep(20);
            } catch (InterruptedException ignored) {
                return;
            }
            body.run();
        }, "fixture-later");
        t.start();
    }
}
