using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Reflection;
using LlmServer.Inference.Quantization;
using Microsoft.Extensions.Options;

namespace LlmServer.Host;

/// <summary>
/// Checks <see cref="ServerOptions"/> at start, whichever source set them (appsettings.json,
/// LLMSERVER_ environment variables, flags), and names each bad value by its flag:
/// every failure reads <c>--flag: message</c>, one per problem, so <c>serve</c> prints one line each.
/// </summary>
public sealed class ServerOptionsValidator : IValidateOptions<ServerOptions>
{
    public ValidateOptionsResult Validate(string? name, ServerOptions o)
    {
        var failures = new List<string>();
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(o, new ValidationContext(o), results, validateAllProperties: true);
        foreach (ValidationResult result in results)
        {
            string member = result.MemberNames.FirstOrDefault() ?? "";
            string flag = FlagFor(member);
            string message = result.ErrorMessage ?? "is not valid";
            // Messages written for a flag start with it; the framework's own say "The field X ...".
            message = message.StartsWith(flag + " ", StringComparison.Ordinal) ? message[(flag.Length + 1)..]
                : message.Replace($"The field {member} ", "", StringComparison.Ordinal);
            failures.Add($"{flag}: {message}");
        }
        void Check(bool ok, string flag, string message)
        {
            if (!ok)
            {
                failures.Add($"{flag}: {message}");
            }
        }
        Check(KvCacheBudget.TryParse(o.KvCacheMemory, out _), "--kv-cache-memory", $"must be a size such as 2GiB or 512MB, or a fraction such as 0.5 (got '{o.KvCacheMemory}')");
        Check(o.Model is null || Directory.Exists(o.Model), "--model", $"must be an existing model directory (got '{o.Model}')");
        bool cpu = o.Device == "cpu";
        Check(!(cpu && o.Dtype == "float16"), "--dtype", "float16 needs --device cuda; on the CPU use bfloat16 (half the weight bytes) or --quantization int8");
        Check(!(cpu && o.Dtype == "bfloat16" && ServingMatrix.UnsupportedReason(WeightFormat.BFloat16) is not null), "--dtype",
            $"bfloat16 cannot serve here: {ServingMatrix.UnsupportedReason(WeightFormat.BFloat16)}");
        Check(!(o.Quantization == "int8" && !cpu), "--quantization", "int8 runs on the CPU's own kernels; on CUDA serve bfloat16");
        Check(!(o.Quantization == "int8" && cpu && ServingMatrix.UnsupportedReason(WeightFormat.Int8) is not null), "--quantization",
            $"int8 cannot serve here: {ServingMatrix.UnsupportedReason(WeightFormat.Int8)}");
        Check(!(o.Quantization == "int8" && o.Dtype is "bfloat16" or "float16"), "--quantization",
            $"int8 already sets how the weights are kept; drop --dtype {o.Dtype}");
        Check(o.MaxRequestBodyBytes > 0, "--max-request-body", $"must be a size such as 8MiB, 512KB or a byte count (got '{o.MaxRequestBody}')");
        Check(o.MaxUploadBytes > 0, "--max-upload-size", $"must be a size such as 512MiB, 10MB or a byte count (got '{o.MaxUploadSize}')");
        Check(o.ApiKey is null || o.ApiKey.Trim().Length > 0, "--api-key", "must not be empty");
        Check(o.AdminKey is null || o.AdminKey.Trim().Length > 0, "--admin-key", "must not be empty");
        Check(o.ApiKey is null || o.ApiKey != o.AdminKey, "--api-key", "--api-key and --admin-key must differ: an inference key must not open admin endpoints");
        Check(string.IsNullOrWhiteSpace(o.OtlpEndpoint) || o.OtlpEndpointUri is not null, "--otlp-endpoint", $"must be an http:// or https:// URL such as http://localhost:4317 (got '{o.OtlpEndpoint}')");
        failures.AddRange(CrossOriginRequests.Problems(o));
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>
    /// Values the binder cannot convert (--port abc) would otherwise throw while binding, naming a
    /// configuration path; this finds them all first and names their flags.
    /// </summary>
    public static void ThrowOnUnconvertibleValues(IConfiguration configuration)
    {
        var failures = new List<string>();
        IConfigurationSection section = configuration.GetSection(ServerOptions.Section);
        foreach (PropertyInfo property in typeof(ServerOptions).GetProperties().Where(p => p.CanWrite))
        {
            if (section[property.Name] is not { } raw)
            {
                continue;
            }
            Type type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            bool ok = type == typeof(int) ? int.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out _)
                : type == typeof(double) ? double.TryParse(raw, NumberStyles.Float, CultureInfo.InvariantCulture, out _)
                : type == typeof(bool) ? bool.TryParse(raw, out _)
                : true;
            if (!ok && !(raw.Length == 0 && Nullable.GetUnderlyingType(property.PropertyType) is not null))
            {
                string kind = type == typeof(int) ? "a whole number" : type == typeof(double) ? "a number" : "true or false";
                failures.Add($"{FlagFor(property.Name)}: must be {kind} (got '{raw}')");
            }
        }
        if (failures.Count > 0)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(ServerOptions), failures);
        }
    }

    private static string FlagFor(string property) =>
        ServeCommandLine.Flags.FirstOrDefault(f => f.ConfigurationKey == $"{ServerOptions.Section}:{property}")?.Name ?? property;
}
