package sentinel.testing;

import org.elasticsearch.Build;
import org.elasticsearch.client.internal.node.NodeClient;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.common.transport.TransportAddress;
import org.elasticsearch.env.Environment;
import org.elasticsearch.http.HttpServerTransport;
import org.elasticsearch.index.IndexVersion;
import org.elasticsearch.node.InternalSettingsPreparer;
import org.elasticsearch.node.MockNode;
import org.elasticsearch.node.Node;
import org.elasticsearch.plugins.ActionPlugin;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.rest.BaseRestHandler;
import org.elasticsearch.rest.RestRequest;
import org.elasticsearch.rest.RestResponse;
import org.elasticsearch.rest.RestStatus;
import org.elasticsearch.transport.TransportService;
import org.elasticsearch.transport.netty4.Netty4Plugin;
import org.elasticsearch.xcontent.XContentBuilder;

import java.io.Closeable;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * Test-only launcher: a real single-node Elasticsearch (server jar + transport-netty4 module) started
 * through the test framework's {@link MockNode}, which accepts plugin classes from the classpath.
 *
 * <pre>
 * java -cp target/classes:$(cat target/classpath.txt) sentinel.testing.SentinelTestNode \
 *      --home DIR [--data DIR] [--http-port N] [--transport-port N] [--exit-on-stdin-eof] [-Ekey=value ...]
 * </pre>
 *
 * Port 0 (the default) binds a free port; the line {@code SENTINEL_ES_READY http://127.0.0.1:PORT ...}
 * on stdout reports the real one once the node accepts requests. SIGTERM closes the node cleanly
 * (flushes shards) and prints {@code SENTINEL_ES_STOPPED}. With {@code --exit-on-stdin-eof} the node
 * also shuts down when its stdin reaches EOF, i.e. when the process that started it dies.
 */
public final class SentinelTestNode {

    private SentinelTestNode() {}

    public static void main(String[] args) {
        try {
            run(args);
        } catch (Throwable t) {
            // ES has started non-daemon threads by now: without exit() a failed start would hang
            t.printStackTrace();
            System.out.println("SENTINEL_ES_FAILED " + t);
            System.out.flush();
            System.exit(1);
        }
    }

    private static void run(String[] args) throws Exception {
        // as the distribution's jvm.options: keep log4j alive until the node has logged its shutdown
        System.setProperty("log4j.shutdownHookEnabled", "false");
        System.setProperty("log4j2.disable.jmx", "true");
        boolean exitOnStdinEof = false;
        Path home = null;
        Path data = null;
        String httpPort = "0";
        String transportPort = "0";
        Settings.Builder extra = Settings.builder();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            switch (a) {
                case "--home" -> home = Path.of(args[++i]);
                case "--data" -> data = Path.of(args[++i]);
                case "--http-port" -> httpPort = args[++i];
                case "--transport-port" -> transportPort = args[++i];
                case "--exit-on-stdin-eof" -> exitOnStdinEof = true;
                default -> {
                    if (a.startsWith("-E") && a.contains("=")) {
                        String kv = a.substring(2);
                        int eq = kv.indexOf('=');
                        extra.put(kv.substring(0, eq), kv.substring(eq + 1));
                    } else {
                        System.err.println("unknown argument: " + a);
                        System.exit(2);
                    }
                }
            }
        }
        if (home == null) {
            home = Files.createTempDirectory("sentinel-es-home");
        }
        if (data == null) {
            data = home.resolve("data");
        }
        Files.createDirectories(home);
        Files.createDirectories(data);
        Files.createDirectories(home.resolve("logs"));

        Settings settings = Settings.builder()
            .put("path.home", home.toAbsolutePath().toString())
            .put("path.data", data.toAbsolutePath().toString())
            .put("path.logs", home.resolve("logs").toAbsolutePath().toString())
            .put("cluster.name", "sentinel-test")
            .put("node.name", "sentinel-test-node")
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.type", "netty4")
            .put("transport.type", "netty4")
            .put("http.port", httpPort)
            .put("transport.port", transportPort)
            // never flip indices read-only because the CI disk is fuller than ES likes
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("logger.level", "INFO")
            .put(extra.build())
            .build();

        LogConfigurator.configureESLogging();
        LogConfigurator.configureWithoutConfig(settings);

        List<Class<? extends Plugin>> plugins = List.of(Netty4Plugin.class, RootEndpointPlugin.class);
        long t0 = System.nanoTime();
        Node node = newMockNode(settings, plugins);
        node.start();

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.prepareForClose();
                node.close();
                node.awaitClose(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                System.out.println("SENTINEL_ES_STOPPED");
                System.out.flush();
                stopped.countDown();
            }
        }, "sentinel-es-shutdown"));

        TransportAddress http = node.injector().getInstance(HttpServerTransport.class).boundAddress().publishAddress();
        TransportAddress transport = node.injector().getInstance(TransportService.class).boundAddress().publishAddress();
        System.out.printf(
            "SENTINEL_ES_READY http://%s:%d transport=%d version=%s pid=%d started_in=%.1fs%n",
            http.getAddress(), http.getPort(), transport.getPort(), Build.current().version(),
            ProcessHandle.current().pid(), (System.nanoTime() - t0) / 1e9);
        System.out.flush();
        if (exitOnStdinEof) {
            // the parent (a test run) holds our stdin open; if it dies, even by SIGKILL, we go too
            Thread watchdog = new Thread(() -> {
                try {
                    while (System.in.read() != -1) {
                        // ignore input
                    }
                } catch (Exception ignored) {
                    // treat as EOF
                }
                System.out.println("SENTINEL_ES stdin closed: shutting down");
                System.out.flush();
                System.exit(0);
            }, "sentinel-es-stdin-watchdog");
            watchdog.setDaemon(true);
            watchdog.start();
        }
        stopped.await();
    }

    /**
     * {@code new MockNode(settings, plugins)} would initialise {@code ESTestCase} (for its port range),
     * whose static init runs {@code BootstrapForTesting}, which refuses to run as root ("can not run
     * elasticsearch as root") and wants the randomized-testing runner. MockNode's private
     * (Environment, plugins, forbidPrivateIndexSettings, onClose) constructor needs none of that.
     */
    private static Node newMockNode(Settings settings, Collection<Class<? extends Plugin>> plugins) throws Exception {
        Environment env = InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), null, () -> "sentinel-test-node");
        Constructor<MockNode> ctor = MockNode.class.getDeclaredConstructor(
            Environment.class, Collection.class, boolean.class, Closeable.class);
        ctor.setAccessible(true);
        try {
            Closeable noop = () -> {};
            return ctor.newInstance(env, plugins, true, noop);
        } catch (InvocationTargetException e) {
            throw e.getCause() instanceof Exception ex ? ex : e;
        }
    }

    /**
     * Serves {@code GET /} and {@code HEAD /} (the full distribution's rest-root module, which is not
     * published to Maven Central) so that clients' info()/ping() work.
     */
    public static final class RootEndpointPlugin extends Plugin implements ActionPlugin {
        private volatile ClusterService clusterService;

        @Override
        public Collection<?> createComponents(PluginServices services) {
            this.clusterService = services.clusterService();
            return List.of();
        }

        @Override
        public Collection<org.elasticsearch.rest.RestHandler> getRestHandlers(
            Settings settings,
            org.elasticsearch.common.io.stream.NamedWriteableRegistry namedWriteableRegistry,
            org.elasticsearch.rest.RestController restController,
            org.elasticsearch.common.settings.ClusterSettings clusterSettings,
            org.elasticsearch.common.settings.IndexScopedSettings indexScopedSettings,
            org.elasticsearch.common.settings.SettingsFilter settingsFilter,
            org.elasticsearch.cluster.metadata.IndexNameExpressionResolver indexNameExpressionResolver,
            Supplier<org.elasticsearch.cluster.node.DiscoveryNodes> nodesInCluster,
            java.util.function.Predicate<org.elasticsearch.features.NodeFeature> clusterSupportsFeature
        ) {
            return List.of(new RootHandler(() -> clusterService));
        }
    }

    static final class RootHandler extends BaseRestHandler {
        private final Supplier<ClusterService> clusterService;

        RootHandler(Supplier<ClusterService> clusterService) {
            this.clusterService = clusterService;
        }

        @Override
        public String getName() {
            return "sentinel_test_main_action";
        }

        @Override
        public List<Route> routes() {
            return List.of(new Route(RestRequest.Method.GET, "/"), new Route(RestRequest.Method.HEAD, "/"));
        }

        @Override
        protected RestChannelConsumer prepareRequest(RestRequest request, NodeClient client) {
            return channel -> {
                if (request.method() == RestRequest.Method.HEAD) {
                    channel.sendResponse(new RestResponse(RestStatus.OK, RestResponse.TEXT_CONTENT_TYPE, ""));
                    return;
                }
                ClusterService cs = clusterService.get();
                Build build = Build.current();
                XContentBuilder b = channel.newBuilder();
                b.startObject();
                b.field("name", cs.getNodeName());
                b.field("cluster_name", cs.getClusterName().value());
                b.field("cluster_uuid", cs.state().metadata().clusterUUID());
                b.startObject("version")
                    .field("number", build.qualifiedVersion())
                    .field("build_flavor", build.flavor())
                    .field("build_type", build.type().displayName())
                    .field("build_hash", build.hash())
                    .field("build_date", build.date())
                    .field("build_snapshot", build.isSnapshot())
                    .field("lucene_version", IndexVersion.current().luceneVersion().toString())
                    .field("minimum_wire_compatibility_version", build.minWireCompatVersion())
                    .field("minimum_index_compatibility_version", build.minIndexCompatVersion())
                    .endObject();
                b.field("tagline", "You Know, for Search");
                b.endObject();
                channel.sendResponse(new RestResponse(RestStatus.OK, b));
            };
        }
    }
}
