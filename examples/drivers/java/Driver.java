// A conformance driver for the Messaging API on the JDK alone (Java 17). The client ("SDK") is
// Client.java: it keeps the obligations of spec §11 the conformance kit checks. This file is
// only the adapter from the driver contract (docs/driver-contract.md) to that client; the
// contract itself (ready line, NDJSON framing, replies, exit codes, view validation) is
// drivers/jvm/MessagingDriver.java.
//
//   javac -d out drivers/jvm/MessagingDriver.java examples/drivers/java/*.java
//   java -cp out Driver
//
// Environment: MESSAGING_BASE_URL, MESSAGING_CONNECTOR_TOKEN, MESSAGING_HOST.

import messaging.driver.MessagingDriver;
import messaging.driver.MessagingDriver.Adapter;
import messaging.driver.MessagingDriver.Command;
import messaging.driver.MessagingDriver.Ctx;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

public final class Driver implements Adapter {
    // The working directory is the driver's to persist in (contract §1).
    private static final String STATE_FILE = ".java-driver-session.json";
    private Client client;

    public static void main(String[] args) {
        MessagingDriver.run("jvm-example-driver", "0.1.0", new Driver());
    }

    @Override
    public void start(Command command, Ctx ctx) throws Exception {
        if (client != null) client.stop();
        client = new Client(ctx.env(), command.streaming());
        client.start();
    }

    @Override
    public void send(Command command, Ctx ctx) {
        conversation().send(command.text());
    }

    @Override
    public void typing(Command command, Ctx ctx) {
        String state = "started".equals(command.state()) ? "TYPING_STATE_STARTED" : "TYPING_STATE_STOPPED";
        conversation().sendEvent("EVENT_TYPE_USER_TYPING", Map.of("state", state));
    }

    @Override
    public void tapSuggestion(Command command, Ctx ctx) {
        List<?> messages = (List<?>) conversation().view().get("messages");
        for (Object item : messages) {
            Map<?, ?> message = (Map<?, ?>) item;
            List<?> suggestions = (List<?>) message.get("suggestions");
            if (command.messageId() != null && command.messageId().equals(message.get("message_id"))
                    && command.index() >= 0 && command.index() < suggestions.size()) {
                conversation().send((String) suggestions.get(command.index()));
                return;
            }
        }
        throw new IllegalArgumentException("no such suggestion");
    }

    @Override
    public void end(Command command, Ctx ctx) {
        conversation().sendEvent("EVENT_TYPE_USER_END_SESSION", Map.of());
    }

    @Override
    public Object view(Command command, Ctx ctx) {
        return client != null ? client.view() : Map.of("connection", "closed");
    }

    // An app restart: the SDK instance goes, a new one resumes from what was persisted.
    @Override
    public void restart(Command command, Ctx ctx) throws Exception {
        Path file = ctx.workDir().resolve(STATE_FILE);
        conversation().stop(Duration.ofSeconds(1)); // close first, keeping what is already on the way
        client.save(file);
        client = Client.restore(ctx.env(), file);
    }

    @Override
    public void exit(Command command, Ctx ctx) {
        if (client != null) client.stop();
    }

    private Client conversation() {
        if (client == null) throw new IllegalStateException("no conversation");
        return client;
    }
}
