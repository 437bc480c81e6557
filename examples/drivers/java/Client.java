// A small but complete Messaging API client on the JDK alone (java.net.http.HttpClient and
// java.net.http.WebSocket, Java 17): the "SDK" the Java example driver (Driver.java) runs. It
// keeps the obligations of spec §11 the conformance kit checks: token and session, REST
// retries, WebSocket with history, agent join, heartbeats, reconnect with backoff, dedupe,
// ordering, resends, and persistence for an app restart. It follows the Node example
// (examples/drivers/node/client.mjs) closely.
//
//   Client client = new Client(env, streaming);
//   client.start(); client.send("hi"); client.view(); client.stop();
//
// JSON goes through the driver helper's small reader/writer (MessagingDriver.Json), since the
// JDK has none. Everything that touches the client's state is synchronized on the client: the
// WebSocket listener, the timers and the driver's commands run on different threads.

import messaging.driver.MessagingDriver.Env;
import messaging.driver.MessagingDriver.Json;

import java.io.IOException;
import java.io.InputStream;
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
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

public final class Client {
    private static final ScheduledExecutorService TIMERS = Executors.newSingleThreadScheduledExecutor(daemon("timers"));
    // Blocking work (a new session after a refused reconnect) stays off the timer thread.
    private static final ExecutorService WORK = Executors.newCachedThreadPool(daemon("work"));

    // Over TLS (the kit's `--tls`), both clients trust the mock's CA alone (MESSAGING_CA_FILE).
    private static final SSLContext TLS = trusting(System.getenv("MESSAGING_CA_FILE"));

    // The liveness ping (see Conn.checkAlive): often enough that a lost close is noticed in
    // time for the first retry to come about 1 s after the drop (RC-3).
    private static final long PING_EVERY_MS = 250;
    private static final long PONG_TIMEOUT_MS = 1000;

    private static final HttpClient HTTP = builder()
            .build();
    // WebSockets get their own HttpClient whose executor runs tasks in the calling thread, so
    // the listener runs on the client's selector thread. With the default (pooled) executor,
    // the JDK (17 to 25) loses a TCP close that arrives right behind a text frame: the
    // transport reads the EOF while the pool thread has not yet asked for the next frame,
    // WebSocketImpl.onComplete -> acknowledgeReception() throws InternalError, and neither
    // onClose nor onError is ever called, so a dropped socket looks open forever. Inline, the
    // next frame is asked for before the transport reads on. The listener must not block.
    private static final HttpClient WS_HTTP = builder()
            .executor(Runnable::run)
            .build();

    private static HttpClient.Builder builder() {
        HttpClient.Builder builder = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(5));
        return TLS == null ? builder : builder.sslContext(TLS);
    }

    /** An SSLContext trusting the PEM certificates in {@code caFile} alone; null without one. */
    private static SSLContext trusting(String caFile) {
        if (caFile == null || caFile.isEmpty()) return null;
        try (InputStream in = Files.newInputStream(Path.of(caFile))) {
            KeyStore roots = KeyStore.getInstance(KeyStore.getDefaultType());
            roots.load(null, null);
            int n = 0;
            for (Certificate ca : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                roots.setCertificateEntry("ca-" + n++, ca);
            }
            TrustManagerFactory trust = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            trust.init(roots);
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(null, trust.getTrustManagers(), null);
            return context;
        } catch (IOException | GeneralSecurityException e) {
            throw new IllegalStateException("MESSAGING_CA_FILE " + caFile + ": " + e, e);
        }
    }

    private final Env env;
    private final boolean streaming;

    private String token;
    private String sessionId;
    private Set<String> seen = new HashSet<>(); // event ids: dedupe (MSG-2)
    private List<Entry> log = new ArrayList<>(); // sorted by (sequence, arrival) (MSG-3)
    private long lastSequence;
    private long arrivals;
    private List<Pending> pending = new ArrayList<>(); // unechoed user messages
    private List<String> queued = new ArrayList<>(); // frames waiting for the history
    private String connection = "connecting";
    private boolean joinSent;
    private boolean ended;
    private boolean stopped;
    private boolean ready;
    private int failures;
    private Conn current;
    private ScheduledFuture<?> heartbeat;
    private final ScheduledFuture<?> ticker;

    /** One event of the local log, with its sort key. */
    private record Entry(long sequence, long arrival, Map<String, Object> event) {}

    /** A user message not yet echoed. */
    private static final class Pending {
        String id;
        String text;
        String frame;
        int resends;
        boolean failed;
        boolean sent;
        long due;
    }

    public Client(Env env, boolean streaming) {
        this.env = env;
        this.streaming = streaming;
        // Unechoed messages are resent on a 1 s tick (MSG-5).
        this.ticker = TIMERS.scheduleAtFixedRate(this::tick, 1, 1, TimeUnit.SECONDS);
    }

    // --- REST -------------------------------------------------------------------------------

    // POST with retries: 429 waits Retry-After; 5xx backs off 0.5 s, 1 s, 2 s (AUTH-5).
    private HttpResponse<String> post(String path, Map<String, String> headers, String body)
            throws IOException, InterruptedException {
        long delay = 500;
        for (int attempt = 1; ; attempt++) {
            HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(env.baseUrl() + path))
                    .timeout(Duration.ofSeconds(10))
                    .POST(HttpRequest.BodyPublishers.ofString(body));
            headers.forEach(request::header);
            HttpResponse<String> response = HTTP.send(request.build(), HttpResponse.BodyHandlers.ofString());
            int status = response.statusCode();
            boolean retry = status == 429 || status >= 500;
            if (!retry || attempt == 5) return response;
            long wait;
            if (status == 429) {
                wait = 1000;
                try {
                    wait = Math.round(Double.parseDouble(response.headers().firstValue("retry-after").orElse("1")) * 1000);
                } catch (NumberFormatException ignored) {
                    // an HTTP date: wait the default second
                }
            } else {
                wait = delay;
                delay = Math.min(delay * 2, 30_000);
            }
            Thread.sleep(wait);
        }
    }

    private void newSession() throws IOException, InterruptedException {
        HttpResponse<String> tokenResponse = post("/api/v1/access-token", Map.of(
                "Content-Type", "application/json",
                "X-Token", env.connectorToken(),
                "X-Host", env.host()), "{}");
        if (tokenResponse.statusCode() != 200) throw new IOException("access-token: " + tokenResponse.statusCode());
        String newToken = str(map(Json.parse(tokenResponse.body())).get("access_token"));
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("streaming_enabled", streaming);
        body.put("platform", "custom");
        HttpResponse<String> sessionResponse = post("/api/v1/sessions", Map.of(
                "Content-Type", "application/json",
                "Authorization", "Bearer " + newToken), Json.write(body));
        if (sessionResponse.statusCode() != 200) throw new IOException("sessions: " + sessionResponse.statusCode());
        String newSession = str(map(Json.parse(sessionResponse.body())).get("session_id"));
        synchronized (this) {
            token = newToken;
            sessionId = newSession;
        }
    }

    // --- the socket -------------------------------------------------------------------------

    private String url(long cursor) {
        String cursorPart = cursor > 0 ? "&cursor=" + cursor : "";
        return env.wsUrl() + "?session_id=" + enc(sessionId) + "&access_token=" + enc(token) + cursorPart;
    }

    private Map<String, Object> capabilities() {
        for (Entry e : log) {
            if ("EVENT_TYPE_SESSION_START".equals(e.event().get("type"))) {
                return map(map(e.event().get("payload")).get("capabilities"));
            }
        }
        return Map.of();
    }

    private double capability(String name, double fallback) {
        return capabilities().get(name) instanceof Number n ? n.doubleValue() : fallback;
    }

    /** Starts a new conversation; returns once the socket is open (the agent may still be joining). */
    public void start() throws Exception {
        newSession();
        CompletableFuture<Void> opened = new CompletableFuture<>();
        synchronized (this) {
            connect(0, opened);
        }
        try {
            opened.get(15, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
            throw new IOException(e.getCause().getMessage(), e.getCause());
        }
    }

    // Called with the lock held.
    private void connect(long cursor, CompletableFuture<Void> opened) {
        Conn conn = new Conn(opened);
        current = conn;
        WS_HTTP.newWebSocketBuilder()
                .connectTimeout(Duration.ofSeconds(5))
                .buildAsync(URI.create(url(cursor)), conn)
                .whenComplete((ws, error) -> {
                    if (error != null) dropped(conn, statusOf(error));
                });
    }

    /** One WebSocket (attempt): its listener, its outgoing queue and what happened to it. */
    private final class Conn implements WebSocket.Listener {
        final CompletableFuture<Void> opened;
        final CompletableFuture<Void> done = new CompletableFuture<>(); // once it has closed
        WebSocket ws;
        boolean open;
        boolean history;
        boolean closed;
        // When the server last answered one of our pings (or the socket opened).
        private volatile long lastPong = System.nanoTime();
        // Set when the ping found the socket dead: how long until the retry (else 1 s).
        long retryInMs = -1;
        private ScheduledFuture<?> liveness;
        private final StringBuilder partial = new StringBuilder();
        // The JDK allows one outstanding send per socket: frames go out one after another.
        private CompletableFuture<?> sending = CompletableFuture.completedFuture(null);

        Conn(CompletableFuture<Void> opened) {
            this.opened = opened;
        }

        @Override
        public void onOpen(WebSocket webSocket) {
            synchronized (Client.this) {
                ws = webSocket;
                open = true;
                if (current != this || stopped) {
                    close(1000);
                } else {
                    failures = 0;
                    connection = "open";
                }
            }
            if (opened != null) opened.complete(null);
            lastPong = System.nanoTime();
            liveness = TIMERS.scheduleAtFixedRate(this::checkAlive, PING_EVERY_MS, PING_EVERY_MS,
                    TimeUnit.MILLISECONDS);
            webSocket.request(1);
        }

        // Even inline, the JDK delivers the first frames after a handshake on the thread that
        // completed it, and a close right behind them can still be lost: the socket then looks
        // open for ever. A WebSocket ping every PING_EVERY_MS (the server's library answers
        // it; it is no protocol event) tells: no pong for PONG_TIMEOUT_MS and the socket is
        // treated as dropped (RC-1). The drop came soon after the last pong, so the retry is
        // timed from there: about 1 s after the drop, as after any other (RC-3).
        private void checkAlive() {
            WebSocket socket = ws;
            if (closed || socket == null) {
                cancel(liveness);
                return;
            }
            long silentMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - lastPong);
            if (silentMs > PONG_TIMEOUT_MS) {
                cancel(liveness);
                socket.abort();
                retryInMs = Math.max(0, PONG_TIMEOUT_MS + PING_EVERY_MS - silentMs);
                dropped(this, 0);
                return;
            }
            socket.sendPing(java.nio.ByteBuffer.allocate(0));
        }

        @Override
        public CompletionStage<?> onPong(WebSocket webSocket, java.nio.ByteBuffer message) {
            lastPong = System.nanoTime();
            webSocket.request(1);
            return null;
        }

        @Override
        public CompletionStage<?> onText(WebSocket webSocket, CharSequence data, boolean last) {
            partial.append(data);
            if (last) {
                String text = partial.toString();
                partial.setLength(0);
                received(this, text);
            }
            webSocket.request(1);
            return null;
        }

        @Override
        public CompletionStage<?> onClose(WebSocket webSocket, int statusCode, String reason) {
            dropped(this, 0);
            return null;
        }

        @Override
        public void onError(WebSocket webSocket, Throwable error) {
            dropped(this, 0);
        }

        // Called with the lock held.
        void send(String frame) {
            WebSocket socket = ws;
            sending = sending.handle((v, e) -> null).thenCompose(v -> socket.sendText(frame, true));
        }

        // Called with the lock held.
        void close(int code) {
            WebSocket socket = ws;
            if (socket == null) return;
            sending = sending.handle((v, e) -> null).thenCompose(v -> socket.sendClose(code, ""));
            // Should the server never answer the close frame, drop the TCP connection anyway.
            TIMERS.schedule(socket::abort, 2, TimeUnit.SECONDS);
        }
    }

    private synchronized void received(Conn conn, String text) {
        Map<String, Object> event;
        try {
            event = map(Json.parse(text));
        } catch (RuntimeException e) {
            return; // undecodable frames are ignored (ERR-2)
        }
        if (stopped) {
            ingest(event); // stop() drains: what was already on the way is kept, nothing is done
            return;
        }
        String type = str(event.get("type"));
        boolean batch = "EVENT_TYPE_EVENT_BATCH".equals(type);
        boolean batchEnds = false;
        if (batch) {
            for (Object inner : list(map(event.get("payload")).get("events"))) {
                if ("EVENT_TYPE_SESSION_END".equals(map(inner).get("type"))) batchEnds = true;
            }
        }
        ingest(event);
        if (batch && !conn.history) {
            conn.history = true;
            if (!batchEnds) onHistory(conn);
        }
        if ("EVENT_TYPE_SESSION_END".equals(type) || batchEnds) {
            ended = true;
            cancel(heartbeat);
            conn.close(1000); // the client closes the socket itself (UX-4)
        }
    }

    private synchronized void dropped(Conn conn, int status) {
        if (conn.closed) return;
        conn.closed = true;
        conn.done.complete(null);
        if (current != conn) return;
        ready = false;
        cancel(heartbeat);
        if (ended || stopped) {
            connection = "closed";
            return;
        }
        if (!conn.open && conn.opened != null) {
            conn.opened.completeExceptionally(new IOException("the WebSocket did not open"
                    + (status > 0 ? " (HTTP " + status + ")" : "")));
            return;
        }
        connection = "reconnecting";
        if (conn.open) {
            // The first retry 1 s after the drop (RC-3).
            failures = 0;
            retryAfter(conn.retryInMs >= 0 ? conn.retryInMs : 1000);
        } else {
            WORK.execute(() -> attemptFailed(status));
        }
    }

    private static int statusOf(Throwable error) {
        for (Throwable e = error; e != null; e = e.getCause()) {
            if (e instanceof WebSocketHandshakeException h) return h.getResponse().statusCode();
        }
        return 0;
    }

    private void retryAfter(long ms) {
        TIMERS.schedule(() -> {
            synchronized (this) {
                if (!stopped && !ended) connect(lastSequence, null);
            }
        }, ms, TimeUnit.MILLISECONDS);
    }

    // A reconnect attempt was refused (runs on a WORK thread).
    private void attemptFailed(int status) {
        synchronized (this) {
            failures += 1;
        }
        // On 404 or 401 start over with a new token and session (RC-5).
        if (status == 404 || status == 401) {
            try {
                newSession();
                synchronized (this) {
                    if (stopped || ended) return;
                    reset();
                    connect(0, null);
                }
                return;
            } catch (Exception e) {
                System.err.println("new session failed: " + e);
            }
        }
        synchronized (this) {
            if (stopped || ended) return;
            // Exactly max_reconnect_attempts attempts (RC-4), then the failure shows.
            double max = capability("max_reconnect_attempts", 5);
            if (failures >= max) {
                connection = "closed";
                return;
            }
            // 2 s, 4 s, … capped at 30 s (RC-3).
            retryAfter(Math.min(1000L << Math.min(failures, 15), 30_000));
        }
    }

    private void reset() {
        seen = new HashSet<>();
        log = new ArrayList<>();
        lastSequence = 0;
        joinSent = false;
        pending = new ArrayList<>();
    }

    // Called with the lock held, once per socket, after its first batch.
    private void onHistory(Conn conn) {
        double interval = capability("heartbeat_interval_seconds", 30);
        cancel(heartbeat);
        if (interval > 0) {
            long ms = Math.max(1, Math.round(interval * 1000));
            heartbeat = TIMERS.scheduleAtFixedRate(() -> sendFrame(frame("EVENT_TYPE_HEARTBEAT", Map.of(), null)),
                    ms, ms, TimeUnit.MILLISECONDS);
        }
        boolean joined = log.stream().anyMatch(e -> "EVENT_TYPE_POLY_AGENT_JOINED".equals(e.event().get("type")));
        if (!joined && !joinSent) {
            joinSent = true; // after the history, once (WS-2/3/4)
            conn.send(frame("EVENT_TYPE_REQUEST_POLY_AGENT_JOIN", Map.of(), null));
        }
        // Messages that went out before a drop and are not echoed in the history go again; those
        // never sent are still queued and go once.
        for (Pending p : pending) {
            if (p.sent && !p.failed) conn.send(p.frame);
        }
        for (String frame : queued) transmit(conn, frame);
        queued = new ArrayList<>();
        ready = true;
    }

    // --- events -----------------------------------------------------------------------------

    private void ingest(Map<String, Object> event) {
        if ("EVENT_TYPE_EVENT_BATCH".equals(event.get("type"))) {
            for (Object item : list(map(event.get("payload")).get("events"))) {
                Map<String, Object> inner = map(item);
                // Appendix A: a payload may sit under a key named after the type.
                if (!inner.containsKey("payload") && inner.get("type") instanceof String t) {
                    String key = t.replaceFirst("^EVENT_TYPE_", "").toLowerCase(java.util.Locale.ROOT);
                    inner.put("payload", inner.containsKey(key) ? inner.get(key) : new LinkedHashMap<>());
                }
                ingestOne(inner); // flatten (MSG-1)
            }
            return;
        }
        ingestOne(event);
    }

    private void ingestOne(Map<String, Object> event) {
        if (!(event.get("id") instanceof String id) || id.isEmpty() || !seen.add(id)) return;
        String clientId = clientEventId(event);
        if ("EVENT_TYPE_USER_MESSAGE".equals(event.get("type")) && clientId != null) {
            pending.removeIf(p -> p.id.equals(clientId));
        }
        arrivals += 1;
        Entry entry;
        Long sequence = Json.integral(event.get("sequence"));
        if (sequence != null) {
            lastSequence = Math.max(lastSequence, sequence);
            entry = new Entry(sequence, 0, event);
        } else {
            entry = new Entry(lastSequence, arrivals, event);
        }
        int at = log.size();
        for (int i = 0; i < log.size(); i++) {
            Entry k = log.get(i);
            if (k.sequence() > entry.sequence() || (k.sequence() == entry.sequence() && k.arrival() > entry.arrival())) {
                at = i;
                break;
            }
        }
        log.add(at, entry);
    }

    private static String clientEventId(Map<String, Object> event) {
        return map(map(event.get("metadata")).get("custom")).get("client_event_id") instanceof String s ? s : null;
    }

    // --- sending ----------------------------------------------------------------------------

    private static String frame(String type, Map<String, Object> payload, String clientEventId) {
        Map<String, Object> frame = new LinkedHashMap<>();
        frame.put("type", type);
        frame.put("payload", payload);
        if (clientEventId != null) frame.put("metadata", Map.of("custom", Map.of("client_event_id", clientEventId)));
        return Json.write(frame);
    }

    /** Sends a frame now if the socket is ready, else once the next history has arrived. */
    public synchronized void sendFrame(String frame) {
        if (ready && current != null && current.open && !current.closed) transmit(current, frame);
        else queued.add(frame);
    }

    /** A user event without fields, e.g. EVENT_TYPE_USER_END_SESSION. */
    public void sendEvent(String type, Map<String, Object> payload) {
        sendFrame(frame(type, payload, null));
    }

    private void transmit(Conn conn, String frame) {
        conn.send(frame);
        for (Pending p : pending) {
            if (p.frame.equals(frame) && !p.sent) {
                p.sent = true;
                p.due = System.currentTimeMillis() + 5000;
            }
        }
    }

    /** The user sends a message; refused once the conversation is over or when too large. */
    public synchronized void send(String text) {
        if (text == null) throw new IllegalArgumentException("no text");
        String id = UUID.randomUUID().toString();
        Map<String, Object> payload = new LinkedHashMap<>();
        payload.put("text", text);
        String frame = frame("EVENT_TYPE_USER_MESSAGE", payload, id);
        if (ended) throw new IllegalStateException("the conversation is over");
        double limit = capability("max_message_size_bytes", 131072);
        if (frame.getBytes(StandardCharsets.UTF_8).length > limit) throw new IllegalArgumentException("message too large"); // WS-7
        Pending p = new Pending();
        p.id = id;
        p.text = text;
        p.frame = frame;
        p.due = System.currentTimeMillis() + 5000;
        pending.add(p);
        sendFrame(frame);
    }

    // Resend unechoed messages 5 s, 15 s and 30 s after they were sent; failed 5 s after the
    // third resend (MSG-5).
    private synchronized void tick() {
        long now = System.currentTimeMillis();
        for (Pending p : pending) {
            if (p.failed || !p.sent || now < p.due) continue;
            if (p.resends >= 3) {
                p.failed = true;
                continue;
            }
            p.resends += 1;
            p.due = now + (p.resends >= 3 ? 5000 : 5000L * (p.resends + 1));
            sendFrame(p.frame);
        }
    }

    // --- what the app shows -----------------------------------------------------------------

    /** The view of contract §4. */
    public synchronized Map<String, Object> view() {
        List<Map<String, Object>> messages = new ArrayList<>();
        Map<String, List<Map<String, Object>>> chunks = new HashMap<>();
        Set<String> echoed = new HashSet<>();
        Map<String, Object> typing = new LinkedHashMap<>();
        typing.put("agent", false);
        typing.put("live_agent", false);
        Map<String, Object> view = new LinkedHashMap<>();
        view.put("connection", connection);
        view.put("session_id", sessionId);
        view.put("agent", null);
        view.put("live_agent", null);
        view.put("handoff", "none");
        view.put("queue", null);
        view.put("client_handoff", null);
        view.put("language", null);
        view.put("ended", null);
        List<Map<String, Object>> systemMessages = new ArrayList<>();
        for (Entry entry : log) {
            Map<String, Object> e = entry.event();
            Map<String, Object> p = map(e.get("payload"));
            switch (str(e.get("type"))) {
                case "EVENT_TYPE_USER_MESSAGE" -> {
                    String id = clientEventId(e);
                    if (id != null && !echoed.add(id)) break;
                    Map<String, Object> m = message(p, "user");
                    m.put("status", "sent");
                    messages.add(m);
                }
                case "EVENT_TYPE_POLY_AGENT_MESSAGE" -> {
                    typing.put("agent", false);
                    messages.add(message(p, "agent"));
                }
                case "EVENT_TYPE_POLY_AGENT_LEFT" -> typing.put("agent", false);
                case "EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK" -> {
                    typing.put("agent", false);
                    String id = String.valueOf(p.get("message_id"));
                    if (!chunks.containsKey(id)) {
                        chunks.put(id, new ArrayList<>());
                        messages.add(message(Map.of("message_id", id), "agent"));
                    }
                    chunks.get(id).add(p);
                }
                case "EVENT_TYPE_LIVE_AGENT_MESSAGE" -> {
                    typing.put("live_agent", false);
                    messages.add(message(p, "live_agent"));
                }
                case "EVENT_TYPE_POLY_AGENT_THINKING" -> typing.put("agent", true);
                case "EVENT_TYPE_LIVE_AGENT_TYPING" -> typing.put("live_agent", !"TYPING_STATE_STOPPED".equals(p.get("state")));
                case "EVENT_TYPE_POLY_AGENT_JOINED" -> {
                    Map<String, Object> agent = new LinkedHashMap<>();
                    agent.put("name", strOr(p.get("agent_name"), ""));
                    agent.put("avatar_url", strOr(p.get("agent_avatar_url"), strOr(p.get("avatar_url"), "")));
                    view.put("agent", agent);
                }
                case "EVENT_TYPE_LIVE_AGENT_JOINED" -> {
                    view.put("live_agent", p.get("agent") instanceof Map ? p.get("agent") : null);
                    view.put("handoff", "live");
                }
                case "EVENT_TYPE_LIVE_AGENT_LEFT" -> {
                    typing.put("live_agent", false);
                    view.put("live_agent", null);
                    view.put("handoff", "ended");
                }
                case "EVENT_TYPE_POLY_AGENT_TRIGGERED_HANDOFF" -> {
                    typing.put("agent", false);
                    view.put("handoff", "triggered");
                }
                case "EVENT_TYPE_HANDOFF_ACCEPTED" -> view.put("handoff", "accepted");
                case "EVENT_TYPE_HANDOFF_QUEUE_STATUS" -> {
                    Map<String, Object> queue = new LinkedHashMap<>();
                    queue.put("queue_name", p.get("queue_name"));
                    queue.put("position_in_queue", p.get("position_in_queue"));
                    queue.put("estimated_wait_seconds", p.get("estimated_wait_seconds"));
                    view.put("queue", queue);
                }
                case "EVENT_TYPE_CLIENT_HANDOFF_REQUIRED" -> {
                    Map<String, Object> handoff = new LinkedHashMap<>();
                    handoff.put("reason", p.get("reason"));
                    handoff.put("queue_name", p.get("queue_name"));
                    view.put("handoff", "client_required");
                    view.put("client_handoff", handoff);
                }
                case "EVENT_TYPE_HANDOFF_FAILED" -> view.put("handoff", "failed");
                case "EVENT_TYPE_HANDOFF_TIMEOUT" -> view.put("handoff", "timeout");
                case "EVENT_TYPE_LANGUAGE_CHANGED" -> view.put("language", p.get("language_code"));
                case "EVENT_TYPE_SYSTEM_MESSAGE" -> {
                    typing.put("agent", false);
                    Map<String, Object> m = new LinkedHashMap<>();
                    m.put("level", p.get("level"));
                    m.put("message", p.get("message"));
                    systemMessages.add(m);
                }
                case "EVENT_TYPE_SESSION_END" -> {
                    typing.put("agent", false);
                    typing.put("live_agent", false);
                    view.put("ended", Map.of("reason", strOr(p.get("reason"), "")));
                }
                default -> { } // unknown types are ignored (ERR-2)
            }
        }
        // Chunks in chunk_index order; complete once every chunk up to the final one is here (MSG-4).
        for (Map<String, Object> m : messages) {
            List<Map<String, Object>> parts = chunks.get(m.get("message_id"));
            if (parts == null || !"agent".equals(m.get("from"))) continue;
            Map<Long, Map<String, Object>> byIndex = new HashMap<>();
            for (Map<String, Object> c : parts) {
                Long index = Json.integral(c.get("chunk_index"));
                if (index != null) byIndex.putIfAbsent(index, c);
            }
            StringBuilder text = new StringBuilder();
            List<Object> attachments = new ArrayList<>();
            List<Object> suggestions = new ArrayList<>();
            boolean complete = false;
            for (long i = 1; byIndex.containsKey(i); i++) {
                Map<String, Object> c = byIndex.get(i);
                text.append(strOr(c.get("text"), ""));
                attachments.addAll(list(c.get("attachments")));
                suggestions.addAll(suggestionTexts(c));
                if (Boolean.TRUE.equals(c.get("is_complete"))) complete = true;
            }
            m.put("text", text.toString());
            m.put("attachments", attachments);
            m.put("suggestions", suggestions);
            m.put("complete", complete);
        }
        for (Pending p : pending) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("message_id", null);
            m.put("from", "user");
            m.put("text", p.text);
            m.put("attachments", List.of());
            m.put("suggestions", List.of());
            m.put("complete", true);
            m.put("status", p.failed ? "failed" : "sending");
            messages.add(m);
        }
        view.put("typing", typing);
        view.put("messages", messages);
        view.put("system_messages", systemMessages);
        return view;
    }

    private static Map<String, Object> message(Map<String, Object> p, String from) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("message_id", p.get("message_id") instanceof String s ? s : null);
        m.put("from", from);
        m.put("text", strOr(p.get("text"), ""));
        m.put("attachments", list(p.get("attachments")));
        m.put("suggestions", suggestionTexts(p));
        m.put("complete", true);
        m.put("status", null);
        return m;
    }

    private static List<Object> suggestionTexts(Map<String, Object> p) {
        List<Object> texts = new ArrayList<>();
        for (Object s : list(p.get("response_suggestions"))) {
            if (map(s).get("message_text") instanceof String t) texts.add(t);
        }
        return texts;
    }

    // --- app restart ------------------------------------------------------------------------

    /** What survives an app restart, kept in the working directory. */
    public synchronized void save(Path path) throws IOException {
        Map<String, Object> state = new LinkedHashMap<>();
        state.put("token", token);
        state.put("session_id", sessionId);
        state.put("streaming", streaming);
        List<Object> events = new ArrayList<>();
        for (Entry e : log) events.add(e.event());
        state.put("events", events);
        List<Object> unechoed = new ArrayList<>();
        for (Pending p : pending) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("id", p.id);
            m.put("text", p.text);
            m.put("frame", p.frame);
            m.put("resends", p.resends);
            m.put("failed", p.failed);
            m.put("sent", p.sent);
            unechoed.add(m);
        }
        state.put("pending", unechoed);
        state.put("join_sent", joinSent);
        Files.writeString(path, Json.write(state));
    }

    /** A new client from {@link #save}'s file, resuming the same session. */
    public static Client restore(Env env, Path path) throws IOException {
        Map<String, Object> state = map(Json.parse(Files.readString(path)));
        Client client = new Client(env, Boolean.TRUE.equals(state.get("streaming")));
        synchronized (client) {
            client.token = str(state.get("token"));
            client.sessionId = str(state.get("session_id"));
            client.joinSent = Boolean.TRUE.equals(state.get("join_sent"));
            for (Object e : list(state.get("events"))) client.ingestOne(map(e));
            for (Object o : list(state.get("pending"))) {
                Map<String, Object> m = map(o);
                Pending p = new Pending();
                p.id = str(m.get("id"));
                p.text = str(m.get("text"));
                p.frame = str(m.get("frame"));
                p.resends = (int) (long) Json.integral(m.get("resends"));
                p.failed = Boolean.TRUE.equals(m.get("failed"));
                p.sent = Boolean.TRUE.equals(m.get("sent"));
                p.due = System.currentTimeMillis() + 5000;
                client.pending.add(p);
                // Never went out before the restart: it goes once the history has arrived.
                if (!p.sent && !p.failed) client.queued.add(p.frame);
            }
            if (client.log.stream().anyMatch(e -> "EVENT_TYPE_SESSION_END".equals(e.event().get("type")))) {
                client.ended = true; // it ended before the restart: nothing to resume
                client.connection = "closed";
            } else {
                client.connect(client.lastSequence, null);
            }
        }
        return client;
    }

    /** Tears the client down: timers stop and the socket closes (the session stays alive). */
    public void stop() {
        stop(Duration.ZERO);
    }

    /**
     * As {@link #stop()}, then waits up to {@code drain} for the socket to finish closing. Frames
     * the server sent before it saw our close are still taken in (not acted on), so a
     * {@link #save} after this holds everything that was delivered (RC-2 after a restart).
     */
    public void stop(Duration drain) {
        CompletableFuture<Void> closed;
        synchronized (this) {
            stopped = true;
            cancel(ticker);
            cancel(heartbeat);
            if (current == null || !current.open || current.closed) return;
            current.close(1000);
            closed = current.done;
        }
        if (drain.isZero()) return;
        try {
            closed.get(drain.toMillis(), TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            // not closed in time: save what there is
        }
    }

    public synchronized boolean ended() { return ended; }

    // --- small helpers ----------------------------------------------------------------------

    private static void cancel(ScheduledFuture<?> future) {
        if (future != null) future.cancel(false);
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> map(Object v) {
        return v instanceof Map ? (Map<String, Object>) v : new LinkedHashMap<>();
    }

    @SuppressWarnings("unchecked")
    static List<Object> list(Object v) {
        return v instanceof List ? (List<Object>) v : List.of();
    }

    static String str(Object v) {
        return v instanceof String s ? s : "";
    }

    static String strOr(Object v, String fallback) {
        return v instanceof String s ? s : fallback;
    }

    private static String enc(String s) {
        return URLEncoder.encode(s == null ? "" : s, StandardCharsets.UTF_8);
    }

    private static java.util.concurrent.ThreadFactory daemon(String name) {
        return runnable -> {
            Thread t = new Thread(runnable, "client-" + name);
            t.setDaemon(true);
            return t;
        };
    }
}
