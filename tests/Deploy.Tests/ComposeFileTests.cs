namespace LlmServer.Deploy.Tests;

/// <summary>docker-compose.yml: valid for Compose, a GPU for the server, keys required, Prometheus and Grafana wired up.</summary>
public sealed class ComposeFileTests : IDisposable
{
    // An empty env file, so that a developer's own .env cannot decide these tests.
    private readonly string _emptyEnvFile = Path.GetTempFileName();

    private static readonly Dictionary<string, string?> Keys = new()
    {
        ["LLMSERVER_API_KEY"] = "test-inference-key",
        ["LLMSERVER_ADMIN_KEY"] = "test-admin-key",
    };

    public void Dispose() => File.Delete(_emptyEnvFile);

    private ProcessResult Config(IReadOnlyDictionary<string, string?> environment) =>
        LintTools.Instance.Compose(environment, "--env-file", _emptyEnvFile, "-f", "docker-compose.yml", "config", "-q");

    [Fact]
    public void Compose_accepts_the_file_when_the_keys_are_set()
    {
        ProcessResult result = Config(Keys);
        Assert.True(result.ExitCode == 0, $"compose config failed:\n{result.Output}");
    }

    [Fact]
    public void Compose_refuses_to_start_without_the_keys_and_says_which()
    {
        ProcessResult result = Config(new Dictionary<string, string?> { ["LLMSERVER_API_KEY"] = "k", ["LLMSERVER_ADMIN_KEY"] = null });
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("LLMSERVER_ADMIN_KEY", result.Output);
    }

    [Fact]
    public void The_server_reserves_an_nvidia_gpu_and_keeps_models_and_data_on_volumes()
    {
        object server = RepositoryFiles.At(RepositoryFiles.ReadYaml("docker-compose.yml"), "services", "llmserver");

        object device = RepositoryFiles.At(server, "deploy", "resources", "reservations", "devices", 0);
        Assert.Equal("nvidia", RepositoryFiles.Text(device, "driver"));
        Assert.Contains("gpu", Assert.IsType<List<object>>(RepositoryFiles.At(device, "capabilities")));
        Assert.Equal("${LLMSERVER_BACKEND:-cuda}", RepositoryFiles.Text(server, "build", "args", "BACKEND"));

        var volumes = Assert.IsType<List<object>>(RepositoryFiles.At(server, "volumes")).Cast<string>().ToList();
        Assert.Contains(volumes, v => v.Contains(":/models", StringComparison.Ordinal));
        Assert.Contains(volumes, v => v.StartsWith("llmserver-data:/data", StringComparison.Ordinal));

        object environment = RepositoryFiles.At(server, "environment");
        Assert.Equal("0.0.0.0", RepositoryFiles.Text(environment, "LLMSERVER_Server__Host"));
        Assert.Equal("/data", RepositoryFiles.Text(environment, "LLMSERVER_Server__DataDir"));
        Assert.StartsWith("${LLMSERVER_ADMIN_KEY:?", RepositoryFiles.Text(environment, "LLMSERVER_Server__AdminKey"), StringComparison.Ordinal);
        Assert.StartsWith("${LLMSERVER_API_KEY:?", RepositoryFiles.Text(environment, "LLMSERVER_Server__ApiKey"), StringComparison.Ordinal);

        var healthcheck = Assert.IsType<List<object>>(RepositoryFiles.At(server, "healthcheck", "test"));
        Assert.Contains("http://127.0.0.1:8000/health", healthcheck);
    }

    [Fact]
    public void Prometheus_scrapes_the_server_and_grafana_is_provisioned_with_it()
    {
        object compose = RepositoryFiles.ReadYaml("docker-compose.yml");
        Assert.Contains("./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
            Assert.IsType<List<object>>(RepositoryFiles.At(compose, "services", "prometheus", "volumes")));
        Assert.Contains("./deploy/grafana/provisioning:/etc/grafana/provisioning:ro",
            Assert.IsType<List<object>>(RepositoryFiles.At(compose, "services", "grafana", "volumes")));

        object scrape = RepositoryFiles.At(RepositoryFiles.ReadYaml("deploy/prometheus/prometheus.yml"), "scrape_configs", 0);
        Assert.Equal("/metrics", RepositoryFiles.Text(scrape, "metrics_path"));
        Assert.Equal("llmserver:8000", RepositoryFiles.Text(scrape, "static_configs", 0, "targets", 0));

        object datasource = RepositoryFiles.At(RepositoryFiles.ReadYaml("deploy/grafana/provisioning/datasources/prometheus.yml"), "datasources", 0);
        Assert.Equal("http://prometheus:9090", RepositoryFiles.Text(datasource, "url"));
        object provider = RepositoryFiles.At(RepositoryFiles.ReadYaml("deploy/grafana/provisioning/dashboards/llmserver.yml"), "providers", 0);
        Assert.Equal("/var/lib/grafana/dashboards", RepositoryFiles.Text(provider, "options", "path"));
        Assert.Contains("./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro",
            Assert.IsType<List<object>>(RepositoryFiles.At(compose, "services", "grafana", "volumes")));
    }
}
