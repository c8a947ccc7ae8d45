namespace LlmServer.Deploy.Tests;

/// <summary>deploy/k8s: GPUs, probes on the health endpoints, non-root, a grace period, storage, keys and autoscaling.</summary>
public sealed class KubernetesManifestTests
{
    private static IEnumerable<object> Documents(string file) => RepositoryFiles.ReadYamlDocuments(Path.Combine("deploy", "k8s", file));

    private static object Single(string file, string kind) =>
        Assert.Single(Documents(file), d => RepositoryFiles.Text(d, "kind") == kind);

    public static TheoryData<string> Deployments => new() { "deployment.yaml", "trainer.yaml" };

    [Theory]
    [MemberData(nameof(Deployments))]
    public void Pods_get_a_gpu_health_probes_and_run_as_non_root(string file)
    {
        object pod = RepositoryFiles.At(Single(file, "Deployment"), "spec", "template", "spec");
        object container = RepositoryFiles.At(pod, "containers", 0);

        Assert.Equal("1", RepositoryFiles.At(container, "resources", "limits", "nvidia.com/gpu").ToString());
        Assert.Equal("1", RepositoryFiles.At(container, "resources", "requests", "nvidia.com/gpu").ToString());
        Assert.Equal("/health/ready", RepositoryFiles.Text(container, "readinessProbe", "httpGet", "path"));
        Assert.Equal("/health", RepositoryFiles.Text(container, "livenessProbe", "httpGet", "path"));
        Assert.Equal("/health", RepositoryFiles.Text(container, "startupProbe", "httpGet", "path"));
        Assert.Equal("true", RepositoryFiles.Text(pod, "securityContext", "runAsNonRoot"));
        Assert.Equal("10001", RepositoryFiles.Text(pod, "securityContext", "runAsUser"));
        Assert.True(int.Parse(RepositoryFiles.Text(pod, "terminationGracePeriodSeconds")) >= 60,
            "the grace period must outlast the server's drain");
        Assert.Equal("llmserver-config", RepositoryFiles.Text(container, "envFrom", 0, "configMapRef", "name"));
        Assert.Equal("llmserver-keys", RepositoryFiles.Text(container, "envFrom", 1, "secretRef", "name"));
    }

    [Fact]
    public void Only_the_single_trainer_trains_and_owns_the_data_volume()
    {
        object trainer = Single("trainer.yaml", "Deployment");
        Assert.Equal("1", RepositoryFiles.Text(trainer, "spec", "replicas"));
        Assert.Equal("Recreate", RepositoryFiles.Text(trainer, "spec", "strategy", "type"));

        object serving = RepositoryFiles.At(Single("deployment.yaml", "Deployment"), "spec", "template", "spec");
        var env = Assert.IsType<List<object>>(RepositoryFiles.At(serving, "containers", 0, "env"));
        Assert.Contains(env, e => RepositoryFiles.Text(e, "name") == "LLMSERVER_Server__NoTraining" && RepositoryFiles.Text(e, "value") == "true");
        object dataMount = Assert.Single(Assert.IsType<List<object>>(RepositoryFiles.At(serving, "containers", 0, "volumeMounts")),
            m => RepositoryFiles.Text(m, "mountPath") == "/data");
        Assert.Equal("true", RepositoryFiles.Text(dataMount, "readOnly"));
    }

    [Fact]
    public void Storage_keys_settings_service_and_autoscaler_are_there_and_listed_in_kustomization()
    {
        var claims = Documents("pvc.yaml").Select(d => RepositoryFiles.Text(d, "metadata", "name")).ToList();
        Assert.Equal(["llmserver-models", "llmserver-data"], claims);

        object secret = Single("secret.yaml", "Secret");
        Assert.Contains("replace-me", RepositoryFiles.Text(secret, "stringData", "LLMSERVER_Server__AdminKey"), StringComparison.Ordinal);
        Assert.NotNull(RepositoryFiles.At(secret, "stringData", "LLMSERVER_Server__ApiKey"));
        Assert.Equal("0.0.0.0", RepositoryFiles.Text(Single("configmap.yaml", "ConfigMap"), "data", "LLMSERVER_Server__Host"));

        object hpa = Single("hpa.yaml", "HorizontalPodAutoscaler");
        Assert.Equal("autoscaling/v2", RepositoryFiles.Text(hpa, "apiVersion"));
        Assert.Equal("llmserver", RepositoryFiles.Text(hpa, "spec", "scaleTargetRef", "name"));
        Assert.Contains("llmserver_num_requests_waiting", RepositoryFiles.Read("deploy/k8s/hpa.yaml"));

        Assert.Equal(2, Documents("service.yaml").Count(d => RepositoryFiles.Text(d, "kind") == "Service"));

        var resources = Assert.IsType<List<object>>(RepositoryFiles.At(RepositoryFiles.ReadYaml("deploy/k8s/kustomization.yaml"), "resources"));
        var manifests = Directory.EnumerateFiles(RepositoryFiles.PathOf("deploy/k8s"), "*.yaml")
            .Select(f => Path.GetFileName(f)).Where(f => f != "kustomization.yaml").Order(StringComparer.Ordinal).ToList();
        Assert.Equal(manifests, resources.Cast<string>().Order(StringComparer.Ordinal).ToList());
    }
}
