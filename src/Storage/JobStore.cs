using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using LlmServer.Inference.Models.Lora;
using Microsoft.Data.Sqlite;

namespace LlmServer.Storage;

/// <summary>
/// Fine-tuning jobs, their events and checkpoints, in the files' SQLite database. The API and the
/// training worker race on a job (a cancel arrives while the worker starts or finishes it), so every
/// status change is a compare-and-set: one UPDATE that names the statuses it may leave, and the
/// event that tells the client about it committed in the same transaction. Whoever loses sees
/// false and nothing changed. Finished jobs (succeeded, failed, cancelled) never change again.
/// </summary>
public sealed class JobStore
{
    private const string JobColumns = """
        id, created_at, model, organization, training_file, validation_file, suffix, seed, method,
        hyperparameters, resolved_hyperparameters, lora, metadata, status, started_at, finished_at,
        fine_tuned_model, trained_tokens, error_code, error_message, error_param, cancel_requested, output_path
        """;
    private const string EventColumns = "id, job_id, created_at, level, message, type, data";
    private const string CheckpointColumns = "id, job_id, created_at, step_number, metrics, fine_tuned_model_checkpoint, path";

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
    private static readonly JobStatus[] Unfinished = [JobStatus.ValidatingFiles, JobStatus.Queued, JobStatus.Running];

    private readonly FineTuningStore _database;

    public JobStore(FineTuningStore database)
    {
        _database = database;
        using SqliteConnection connection = database.Open();
        // An explicit INTEGER PRIMARY KEY (seq) orders rows: a table's implicit rowid may be
        // renumbered by VACUUM, and timestamps have one-second resolution.
        FineTuningStore.Execute(connection, """
            CREATE TABLE IF NOT EXISTS jobs (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                created_at INTEGER NOT NULL,
                model TEXT NOT NULL,
                organization TEXT NOT NULL,
                training_file TEXT NOT NULL,
                validation_file TEXT,
                suffix TEXT,
                seed INTEGER NOT NULL,
                method TEXT NOT NULL,
                hyperparameters TEXT NOT NULL,
                resolved_hyperparameters TEXT,
                lora TEXT NOT NULL,
                metadata TEXT,
                status TEXT NOT NULL,
                started_at INTEGER,
                finished_at INTEGER,
                fine_tuned_model TEXT,
                trained_tokens INTEGER,
                error_code TEXT,
                error_message TEXT,
                error_param TEXT,
                cancel_requested INTEGER NOT NULL DEFAULT 0,
                output_path TEXT
            );
            CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
            CREATE TABLE IF NOT EXISTS job_events (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                job_id TEXT NOT NULL REFERENCES jobs (id),
                created_at INTEGER NOT NULL,
                level TEXT NOT NULL,
                message TEXT NOT NULL,
                type TEXT NOT NULL,
                data TEXT
            );
            CREATE INDEX IF NOT EXISTS job_events_by_job ON job_events (job_id, seq);
            CREATE TABLE IF NOT EXISTS job_checkpoints (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                job_id TEXT NOT NULL REFERENCES jobs (id),
                created_at INTEGER NOT NULL,
                step_number INTEGER NOT NULL,
                metrics TEXT NOT NULL,
                fine_tuned_model_checkpoint TEXT NOT NULL UNIQUE,
                path TEXT NOT NULL,
                UNIQUE (job_id, step_number)
            );
            """);
    }

    // ---- jobs -------------------------------------------------------------------------------

    /// <summary>
    /// Records a new job in <see cref="JobStatus.ValidatingFiles"/> with its creation events. A job
    /// without a seed gets a random one in OpenAI's range (0 to 2^31 - 1).
    /// </summary>
    public StoredJob CreateJob(NewJob job)
    {
        string id = FineTuningStore.NewId("ftjob-");
        long now = Now();
        using SqliteConnection connection = _database.Open();
        using SqliteTransaction transaction = connection.BeginTransaction();
        using (SqliteCommand insert = Command(connection, transaction, """
            INSERT INTO jobs (id, created_at, model, organization, training_file, validation_file, suffix, seed, method,
                              hyperparameters, lora, metadata, status)
            VALUES ($id, $created_at, $model, $organization, $training_file, $validation_file, $suffix, $seed, $method,
                    $hyperparameters, $lora, $metadata, $status)
            """))
        {
            insert.Parameters.AddWithValue("$id", id);
            insert.Parameters.AddWithValue("$created_at", now);
            insert.Parameters.AddWithValue("$model", job.Model);
            insert.Parameters.AddWithValue("$organization", job.Organization);
            insert.Parameters.AddWithValue("$training_file", job.TrainingFile);
            insert.Parameters.AddWithValue("$validation_file", Nullable(job.ValidationFile));
            insert.Parameters.AddWithValue("$suffix", Nullable(job.Suffix));
            insert.Parameters.AddWithValue("$seed", job.Seed ?? RandomNumberGenerator.GetInt32(int.MaxValue));
            insert.Parameters.AddWithValue("$method", NewJob.SupervisedMethod);
            insert.Parameters.AddWithValue("$hyperparameters", JsonSerializer.Serialize(job.Hyperparameters, Json));
            insert.Parameters.AddWithValue("$lora", JsonSerializer.Serialize(job.Lora, Json));
            insert.Parameters.AddWithValue("$metadata", job.Metadata is null ? DBNull.Value : JsonSerializer.Serialize(job.Metadata, Json));
            insert.Parameters.AddWithValue("$status", JobStatus.ValidatingFiles.ToWire());
            insert.ExecuteNonQuery();
        }
        InsertEvent(connection, transaction, id, now, JobEventLevel.Info, $"Created fine-tuning job: {id}", JobEventType.Message, null);
        InsertEvent(connection, transaction, id, now, JobEventLevel.Info,
            job.ValidationFile is null
                ? $"Validating training file: {job.TrainingFile}"
                : $"Validating training file: {job.TrainingFile} and validation file: {job.ValidationFile}",
            JobEventType.Message, null);
        transaction.Commit();
        return FindJob(connection, null, id)!;
    }

    public StoredJob? GetJob(string id)
    {
        using SqliteConnection connection = _database.Open();
        return FindJob(connection, null, id);
    }

    /// <summary>Jobs newest first, as OpenAI lists them; <paramref name="after"/> is the last id of the previous page.</summary>
    public (IReadOnlyList<StoredJob> Page, bool HasMore) ListJobs(string? after, int limit)
    {
        using SqliteConnection connection = _database.Open();
        using SqliteCommand query = Command(connection, null, $"""
            SELECT {JobColumns} FROM jobs
            WHERE $after IS NULL OR seq < (SELECT seq FROM jobs WHERE id = $after)
            ORDER BY seq DESC LIMIT $limit
            """);
        query.Parameters.AddWithValue("$after", Nullable(after));
        query.Parameters.AddWithValue("$limit", limit + 1);
        return Page(ReadAll(query, ReadJob), limit);
    }

    /// <summary>Every job in <paramref name="status"/>, oldest first: at start-up, the jobs a stopped server left running.</summary>
    public IReadOnlyList<StoredJob> ListJobsWithStatus(JobStatus status)
    {
        using SqliteConnection connection = _database.Open();
        using SqliteCommand query = Command(connection, null, $"SELECT {JobColumns} FROM jobs WHERE status = $status ORDER BY seq");
        query.Parameters.AddWithValue("$status", status.ToWire());
        return ReadAll(query, ReadJob);
    }

    /// <summary>How many jobs are in each status, every status present (zero when none): the metrics gauge.</summary>
    public IReadOnlyDictionary<JobStatus, long> CountJobsByStatus()
    {
        Dictionary<JobStatus, long> counts = Enum.GetValues<JobStatus>().ToDictionary(status => status, _ => 0L);
        using SqliteConnection connection = _database.Open();
        using SqliteCommand query = Command(connection, null, "SELECT status, COUNT(*) FROM jobs GROUP BY status");
        using SqliteDataReader reader = query.ExecuteReader();
        while (reader.Read())
        {
            counts[JobStatusNames.Parse(reader.GetString(0))] = reader.GetInt64(1);
        }
        return counts;
    }

    /// <summary>
    /// Moves the oldest job in <paramref name="from"/> to <paramref name="to"/> and returns it as it
    /// is now, or null when there is none; two workers never claim the same job.
    /// </summary>
    public StoredJob? ClaimNextJob(JobStatus from, JobStatus to, string? message = null)
    {
        using SqliteConnection connection = _database.Open();
        using SqliteTransaction transaction = connection.BeginTransaction();
        using SqliteCommand oldest = Command(connection, transaction, "SELECT id FROM jobs WHERE status = $status ORDER BY seq LIMIT 1");
        oldest.Parameters.AddWithValue("$status", from.ToWire());
        if (oldest.ExecuteScalar() is not string id || !Transition(connection, transaction, id, [from], to, message))
        {
            return null;
        }
        transaction.Commit();
        return FindJob(connection, null, id);
    }

    /// <summary>
    /// Compare-and-set: moves the job to <paramref name="to"/> only if it is in one of
    /// <paramref name="from"/>, and appends the status event (<paramref name="message"/>, or the
    /// standard one for <paramref name="to"/>). Entering running stamps started_at (the first
    /// time); entering cancelled stamps finished_at. False, and nothing changed, when the job is in
    /// another status or does not exist. Succeeded and failed carry results: use
    /// <see cref="MarkSucceeded"/> and <see cref="MarkFailed"/>.
    /// </summary>
    public bool TryTransition(string id, IReadOnlyCollection<JobStatus> from, JobStatus to, string? message = null)
    {
        using SqliteConnection connection = _database.Open();
        using SqliteTransaction transaction = connection.BeginTransaction();
        bool moved = Transition(connection, transaction, id, from, to, message);
        transaction.Commit();
        return moved;
    }

    public bool TryTransition(string id, JobStatus from, JobStatus to, string? message = null) => TryTransition(id, [from], to, message);

    /// <summary>
    /// Cancels a job for a client: one that has not started is cancelled at once; a running one is
    /// marked cancel_requested for the worker, which stops it and ends it with
    /// <see cref="MarkCancelled"/>; a finished one is left alone. Atomic against the worker's transitions.
    /// </summary>
    public CancelResult RequestCancel(string id)
    {
        using SqliteConnection connection = _database.Open();
        using SqliteTransaction transaction = connection.BeginTransaction();
        CancelOutcome outcome;
        if (Transition(connection, transaction, id, [JobStatus.ValidatingFiles, JobStatus.Queued], JobStatus.Cancelled, null))
        {
            outcome = CancelOutcome.Cancelled;
        }
        else
        {
            using SqliteCommand request = Command(connection, transaction,
                "UPDATE jobs SET cancel_requested = 1 WHERE id = $id AND status = 'running' AND cancel_requested = 0");
            request.Parameters.AddWithValue("$id", id);
            if (request.ExecuteNonQuery() == 1)
            {
                InsertEvent(connection, transaction, id, Now(), JobEventLevel.Info, "Cancellation requested; stopping the job", JobEventType.Message, null);
                outcome = CancelOutcome.CancelRequested;
            }
            else
            {
                outcome = FindJob(connection, transaction, id) switch
                {
                    null => CancelOutcome.NotFound,
                    { Status: JobStatus.Running } => CancelOutcome.CancelRequested, // asked before; once is enough
                    _ => CancelOutcome.AlreadyFinished,
                };
            }
        }
        StoredJob? job = FindJob(connection, transaction, id);
        transaction.Commit();
        return new CancelResult(outcome, job);
    }

    /// <summary>
    /// Running to succeeded with its results. False when the job is not running, or when a client
    /// asked to cancel it: an accepted cancel is never lost, so the worker then calls
    /// <see cref="MarkCancelled"/> instead.
    /// </summary>
    public bool MarkSucceeded(string id, string fineTunedModel, long trainedTokens, string outputPath)
    {
        using SqliteConnection connection = _database.Open();
        using SqliteTransaction transaction = connection.BeginTransaction();
        using SqliteCommand update = Command(connection, transaction, """
            UPDATE jobs SET status = 'succeeded', finished_at = $now, fine_tuned_model = $model,
                            trained_tokens = $tokens, output_path = $path
            WHERE id = $id AND status = 'running' AND cancel_requested = 0
            """);
        long now = Now();
        update.Parameters.AddWithValue("$id", id);
        update.Parameters.AddWithValue("$now", now);
        update.Parameters.AddWithValue("$model", fineTunedModel);
        update.Parameters.AddWithValue("$tokens", trainedTokens);
        update.Parameters.AddWithValue("$path", outputPath);
        if (update.ExecuteNonQuery() == 0)
        {
            return false;
        }
        InsertEvent(connection, transaction, id, now, JobEventLevel.Info, $"New fine-tuned model created: {fineTunedModel}", JobEventType.Message, null);
        InsertEvent(connection, transaction, id, now, JobEventLevel.Info, StatusMessage(JobStatus.Succeeded), JobEventType.Message, null);
        transaction.Commit();
        return true;
    }

    /// <summary>Any unfinished job to failed, with OpenAI's error fields; false when it had already finished.</summary>
    public bool MarkFailed(string id, string code, string message, string? param = null)
    {
        using SqliteConnection connection = _database.Open();
        using SqliteTransaction transaction = connection.BeginTransaction();
        long now = Now();
        using SqliteCommand update = Command(connection, transaction, """
            UPDATE jobs SET status = 'failed', finished_at = $now, error_code = $code, error_message = $message, error_param = $param
            WHERE id = $id AND status IN ('validating_files', 'queued', 'running')
            """);
        update.Parameters.AddWithValue("$id", id);
        update.Parameters.AddWithValue("$now", now);
        update.Parameters.AddWithValue("$code", code);
        update.Parameters.AddWithValue("$message", message);
        update.Parameters.AddWithValue("$param", Nullable(param));
        if (update.ExecuteNonQuery() == 0)
        {
            return false;
        }
        InsertEvent(connection, transaction, id, now, JobEventLevel.Error, $"{StatusMessage(JobStatus.Failed)}: {message}", JobEventType.Message, null);
        transaction.Commit();
        return true;
    }

    /// <summary>Any unfinished job to cancelled: what the worker calls once it has stopped a job whose cancel was requested.</summary>
    public bool MarkCancelled(string id) => TryTransition(id, Unfinished, JobStatus.Cancelled);

    /// <summary>Records what "auto" resolved to; every value must be set.</summary>
    public bool SetResolvedHyperparameters(string id, JobHyperparameters resolved)
    {
        if (!resolved.IsResolved)
        {
            throw new ArgumentException("Resolved hyperparameters have no \"auto\" (null) values.", nameof(resolved));
        }
        return Update(id, "resolved_hyperparameters = $value", JsonSerializer.Serialize(resolved, Json));
    }

    /// <summary>Tokens trained on so far, for a running job's progress; <see cref="MarkSucceeded"/> sets the final count.</summary>
    public bool SetTrainedTokens(string id, long trainedTokens) => Update(id, "trained_tokens = $value", trainedTokens);

    // ---- events -----------------------------------------------------------------------------

    /// <summary>Appends an event to a job's log; <paramref name="dataJson"/> must be a JSON object (metrics events carry one).</summary>
    public StoredJobEvent AddEvent(string jobId, JobEventLevel level, string message, JobEventType type = JobEventType.Message, string? dataJson = null)
    {
        if (dataJson is not null)
        {
            using JsonDocument data = JsonDocument.Parse(dataJson);
            if (data.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new ArgumentException("An event's data is a JSON object.", nameof(dataJson));
            }
        }
        using SqliteConnection connection = _database.Open();
        return InsertEvent(connection, null, jobId, Now(), level, message, type, dataJson);
    }

    /// <summary>A job's events newest first, as OpenAI lists them; <paramref name="after"/> is the last id of the previous page.</summary>
    public (IReadOnlyList<StoredJobEvent> Page, bool HasMore) ListEvents(string jobId, string? after, int limit)
    {
        using SqliteConnection connection = _database.Open();
        using SqliteCommand query = Command(connection, null, $"""
            SELECT {EventColumns} FROM job_events
            WHERE job_id = $job AND ($after IS NULL OR seq < (SELECT seq FROM job_events WHERE id = $after AND job_id = $job))
            ORDER BY seq DESC LIMIT $limit
            """);
        query.Parameters.AddWithValue("$job", jobId);
        query.Parameters.AddWithValue("$after", Nullable(after));
        query.Parameters.AddWithValue("$limit", limit + 1);
        return Page(ReadAll(query, ReadEvent), limit);
    }

    // ---- checkpoints ------------------------------------------------------------------------

    /// <summary>
    /// Records a checkpoint. A job that writes the same step again (it was restarted from the
    /// beginning) replaces that step's row and keeps its id.
    /// </summary>
    public StoredCheckpoint AddCheckpoint(string jobId, int stepNumber, CheckpointMetrics metrics, string fineTunedModelCheckpoint, string path)
    {
        using SqliteConnection connection = _database.Open();
        using SqliteCommand insert = Command(connection, null, $"""
            INSERT INTO job_checkpoints (id, job_id, created_at, step_number, metrics, fine_tuned_model_checkpoint, path)
            VALUES ($id, $job, $created_at, $step, $metrics, $name, $path)
            ON CONFLICT (job_id, step_number) DO UPDATE SET
                created_at = excluded.created_at, metrics = excluded.metrics,
                fine_tuned_model_checkpoint = excluded.fine_tuned_model_checkpoint, path = excluded.path
            RETURNING {CheckpointColumns}
            """);
        insert.Parameters.AddWithValue("$id", FineTuningStore.NewId("ftckpt_"));
        insert.Parameters.AddWithValue("$job", jobId);
        insert.Parameters.AddWithValue("$created_at", Now());
        insert.Parameters.AddWithValue("$step", stepNumber);
        insert.Parameters.AddWithValue("$metrics", JsonSerializer.Serialize(metrics, Json));
        insert.Parameters.AddWithValue("$name", fineTunedModelCheckpoint);
        insert.Parameters.AddWithValue("$path", path);
        return ReadAll(insert, ReadCheckpoint)[0];
    }

    /// <summary>A job's checkpoints, highest step first; <paramref name="after"/> is the last id of the previous page.</summary>
    public (IReadOnlyList<StoredCheckpoint> Page, bool HasMore) ListCheckpoints(string jobId, string? after, int limit)
    {
        using SqliteConnection connection = _database.Open();
        using SqliteCommand query = Command(connection, null, $"""
            SELECT {CheckpointColumns} FROM job_checkpoints
            WHERE job_id = $job
              AND ($after IS NULL OR (step_number, seq) < (SELECT step_number, seq FROM job_checkpoints WHERE id = $after AND job_id = $job))
            ORDER BY step_number DESC, seq DESC LIMIT $limit
            """);
        query.Parameters.AddWithValue("$job", jobId);
        query.Parameters.AddWithValue("$after", Nullable(after));
        query.Parameters.AddWithValue("$limit", limit + 1);
        return Page(ReadAll(query, ReadCheckpoint), limit);
    }

    /// <summary>The checkpoint a client selects by its name (<c>ft:...:ckpt-step-N</c>).</summary>
    public StoredCheckpoint? GetCheckpointByName(string fineTunedModelCheckpoint)
    {
        using SqliteConnection connection = _database.Open();
        using SqliteCommand query = Command(connection, null, $"SELECT {CheckpointColumns} FROM job_checkpoints WHERE fine_tuned_model_checkpoint = $name");
        query.Parameters.AddWithValue("$name", fineTunedModelCheckpoint);
        return ReadAll(query, ReadCheckpoint) is [var checkpoint] ? checkpoint : null;
    }

    // ---- internals --------------------------------------------------------------------------

    private static bool Transition(SqliteConnection connection, SqliteTransaction transaction, string id,
        IReadOnlyCollection<JobStatus> from, JobStatus to, string? message)
    {
        if (to is JobStatus.Succeeded or JobStatus.Failed or JobStatus.ValidatingFiles)
        {
            throw new ArgumentException($"A job cannot be moved to {to.ToWire()} this way.", nameof(to));
        }
        if (from.Count == 0 || from.Any(s => s.IsFinished()))
        {
            throw new ArgumentException("Only unfinished jobs change status.", nameof(from));
        }
        long now = Now();
        string[] names = [.. from.Select((_, i) => "$from" + i.ToString(CultureInfo.InvariantCulture))];
        using SqliteCommand update = Command(connection, transaction, $"""
            UPDATE jobs SET status = $to,
                started_at = CASE WHEN $to = 'running' THEN COALESCE(started_at, $now) ELSE started_at END,
                finished_at = CASE WHEN $to = 'cancelled' THEN $now ELSE finished_at END
            WHERE id = $id AND status IN ({string.Join(", ", names)})
            """);
        update.Parameters.AddWithValue("$id", id);
        update.Parameters.AddWithValue("$to", to.ToWire());
        update.Parameters.AddWithValue("$now", now);
        foreach ((JobStatus status, string name) in from.Zip(names))
        {
            update.Parameters.AddWithValue(name, status.ToWire());
        }
        if (update.ExecuteNonQuery() == 0)
        {
            return false;
        }
        InsertEvent(connection, transaction, id, now, JobEventLevel.Info, message ?? StatusMessage(to), JobEventType.Message, null);
        return true;
    }

    /// <summary>The event each status change writes, worded as OpenAI's.</summary>
    private static string StatusMessage(JobStatus status) => status switch
    {
        JobStatus.Queued => "Files validated, moving job to queued state",
        JobStatus.Running => "Fine-tuning job started",
        JobStatus.Succeeded => "The job has successfully completed",
        JobStatus.Failed => "Job failed",
        JobStatus.Cancelled => "Job cancelled",
        _ => $"Job is {status.ToWire()}",
    };

    private static StoredJobEvent InsertEvent(SqliteConnection connection, SqliteTransaction? transaction, string jobId, long createdAt,
        JobEventLevel level, string message, JobEventType type, string? dataJson)
    {
        var stored = new StoredJobEvent(FineTuningStore.NewId("ftevent-"), jobId, createdAt, level, message, type, dataJson);
        using SqliteCommand insert = Command(connection, transaction,
            "INSERT INTO job_events (id, job_id, created_at, level, message, type, data) VALUES ($id, $job, $created_at, $level, $message, $type, $data)");
        insert.Parameters.AddWithValue("$id", stored.Id);
        insert.Parameters.AddWithValue("$job", jobId);
        insert.Parameters.AddWithValue("$created_at", createdAt);
        insert.Parameters.AddWithValue("$level", LevelName(level));
        insert.Parameters.AddWithValue("$message", message);
        insert.Parameters.AddWithValue("$type", TypeName(type));
        insert.Parameters.AddWithValue("$data", Nullable(dataJson));
        insert.ExecuteNonQuery();
        return stored;
    }

    private bool Update(string id, string assignment, object value)
    {
        using SqliteConnection connection = _database.Open();
        using SqliteCommand update = Command(connection, null, $"UPDATE jobs SET {assignment} WHERE id = $id");
        update.Parameters.AddWithValue("$id", id);
        update.Parameters.AddWithValue("$value", value);
        return update.ExecuteNonQuery() == 1;
    }

    private static StoredJob? FindJob(SqliteConnection connection, SqliteTransaction? transaction, string id)
    {
        using SqliteCommand query = Command(connection, transaction, $"SELECT {JobColumns} FROM jobs WHERE id = $id");
        query.Parameters.AddWithValue("$id", id);
        return ReadAll(query, ReadJob) is [var job] ? job : null;
    }

    private static StoredJob ReadJob(SqliteDataReader r) => new(
        Id: r.GetString(0),
        CreatedAt: r.GetInt64(1),
        Model: r.GetString(2),
        Organization: r.GetString(3),
        TrainingFile: r.GetString(4),
        ValidationFile: NullableString(r, 5),
        Suffix: NullableString(r, 6),
        Seed: r.GetInt32(7),
        Method: r.GetString(8),
        Hyperparameters: Deserialize<JobHyperparameters>(r.GetString(9)),
        ResolvedHyperparameters: NullableString(r, 10) is { } resolved ? Deserialize<JobHyperparameters>(resolved) : null,
        Lora: Deserialize<LoraSettings>(r.GetString(11)),
        Metadata: NullableString(r, 12) is { } metadata ? Deserialize<Dictionary<string, string>>(metadata) : null,
        Status: JobStatusNames.Parse(r.GetString(13)),
        StartedAt: NullableInt64(r, 14),
        FinishedAt: NullableInt64(r, 15),
        FineTunedModel: NullableString(r, 16),
        TrainedTokens: NullableInt64(r, 17),
        Error: NullableString(r, 18) is { } code ? new JobError(code, r.GetString(19), NullableString(r, 20)) : null,
        CancelRequested: r.GetInt64(21) != 0,
        OutputPath: NullableString(r, 22));

    private static StoredJobEvent ReadEvent(SqliteDataReader r) => new(
        r.GetString(0), r.GetString(1), r.GetInt64(2), ParseLevel(r.GetString(3)), r.GetString(4), ParseType(r.GetString(5)), NullableString(r, 6));

    private static StoredCheckpoint ReadCheckpoint(SqliteDataReader r) => new(
        r.GetString(0), r.GetString(1), r.GetInt64(2), r.GetInt32(3), Deserialize<CheckpointMetrics>(r.GetString(4)), r.GetString(5), r.GetString(6));

    private static string LevelName(JobEventLevel level) => level switch
    {
        JobEventLevel.Info => "info",
        JobEventLevel.Warn => "warn",
        JobEventLevel.Error => "error",
        _ => throw new ArgumentOutOfRangeException(nameof(level)),
    };

    private static JobEventLevel ParseLevel(string name) => name switch
    {
        "info" => JobEventLevel.Info,
        "warn" => JobEventLevel.Warn,
        "error" => JobEventLevel.Error,
        _ => throw new FormatException($"Unknown event level '{name}'."),
    };

    private static string TypeName(JobEventType type) => type == JobEventType.Metrics ? "metrics" : "message";

    private static JobEventType ParseType(string name) => name == "metrics" ? JobEventType.Metrics : JobEventType.Message;

    private static (IReadOnlyList<T> Page, bool HasMore) Page<T>(List<T> rows, int limit) =>
        rows.Count > limit ? (rows[..limit], true) : (rows, false);

    private static List<T> ReadAll<T>(SqliteCommand query, Func<SqliteDataReader, T> read)
    {
        var rows = new List<T>();
        using SqliteDataReader reader = query.ExecuteReader();
        while (reader.Read())
        {
            rows.Add(read(reader));
        }
        return rows;
    }

    private static SqliteCommand Command(SqliteConnection connection, SqliteTransaction? transaction, string sql)
    {
        SqliteCommand command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return command;
    }

    private static T Deserialize<T>(string json) =>
        JsonSerializer.Deserialize<T>(json, Json) ?? throw new FormatException($"The store holds null where a {typeof(T).Name} belongs.");

    private static object Nullable(string? value) => (object?)value ?? DBNull.Value;

    private static string? NullableString(SqliteDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    private static long? NullableInt64(SqliteDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetInt64(ordinal);

    private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeSeconds();
}
