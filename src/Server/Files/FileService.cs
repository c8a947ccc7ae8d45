using LlmServer.Host;
using LlmServer.OpenAi;
using LlmServer.Storage;
using LlmServer.Training.Data;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace LlmServer.Files;

/// <summary>
/// OpenAI's Files API over the store: uploads stream to disk (never whole into memory), are
/// refused with 413 past --max-upload-size, and are kept only if they validate as fine-tuning data.
/// </summary>
public sealed class FileService(FineTuningStore store, IOptions<ServerOptions> options)
{
    public const string FineTunePurpose = "fine-tune";
    private const int MaxPurposeLength = 64;

    public async Task<FileObject> UploadAsync(HttpContext context)
    {
        long limit = options.Value.MaxUploadBytes;
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
        {
            // Room for the multipart framing and the purpose field around the file itself.
            bodyLimit.MaxRequestBodySize = limit + 64 * 1024;
        }
        if (!MediaTypeHeaderValue.TryParse(context.Request.ContentType, out MediaTypeHeaderValue? mediaType)
            || !mediaType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase))
        {
            throw ApiException.UnsupportedMediaType(context.Request.ContentType, "multipart/form-data");
        }
        if (HeaderUtilities.RemoveQuotes(mediaType.Boundary).Value is not { Length: > 0 } boundary)
        {
            throw new ApiException(StatusCodes.Status400BadRequest, "Upload the file as multipart/form-data with a boundary and the fields file and purpose.", param: "file");
        }

        string? purpose = null, filename = null, uploadPath = null;
        try
        {
            var reader = new MultipartReader(boundary, context.Request.Body);
            while (await ReadUploadAsync(() => reader.ReadNextSectionAsync(context.RequestAborted)) is { } section)
            {
                if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out ContentDispositionHeaderValue? disposition))
                {
                    continue;
                }
                string? name = HeaderUtilities.RemoveQuotes(disposition.Name).Value;
                if (name == "purpose")
                {
                    purpose = (await ReadUploadAsync(() => ReadSmallFieldAsync(section.Body, context.RequestAborted))).Trim();
                }
                else if (name == "file" && uploadPath is null)
                {
                    filename = Path.GetFileName(HeaderUtilities.RemoveQuotes(disposition.FileName).Value ?? "") is { Length: > 0 } given ? given : "upload.jsonl";
                    uploadPath = store.NewUploadPath();
                    await CopyWithLimitAsync(section.Body, uploadPath, limit, context.RequestAborted);
                }
            }
            if (uploadPath is null)
            {
                throw new ApiException(StatusCodes.Status400BadRequest, "The request has no file field.", param: "file");
            }
            if (purpose != FineTunePurpose)
            {
                throw new ApiException(StatusCodes.Status400BadRequest,
                    $"purpose must be '{FineTunePurpose}', the only purpose this server stores files for.", param: "purpose", code: "invalid_value");
            }
            TrainingFileReport report;
            await using (FileStream content = File.OpenRead(uploadPath))
            {
                report = TrainingFileValidator.Validate(content);
            }
            if (!report.IsValid)
            {
                throw new ApiException(StatusCodes.Status400BadRequest, report.Describe(), param: "file", code: "invalid_file");
            }
            StoredFile stored = store.KeepUpload(uploadPath, filename!, purpose);
            uploadPath = null;
            return FileObject.From(stored);
        }
        finally
        {
            if (uploadPath is not null)
            {
                File.Delete(uploadPath);
            }
        }
    }

    /// <param name="limit">Taken as text, so a limit that is not a number gets OpenAI's error naming it, not an empty 400 from the binder.</param>
    public FileList List(string? purpose, string? limit, string? after, string? order)
    {
        if (order is not null and not "desc")
        {
            throw ApiException.InvalidParameter("order", "order must be 'desc': files are listed newest first.");
        }
        int pageSize = 10_000;
        if (limit is not null && !int.TryParse(limit, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out pageSize)
            || pageSize is < 1 or > 10_000)
        {
            throw ApiException.InvalidParameter("limit", "limit must be between 1 and 10000.");
        }
        (IReadOnlyList<StoredFile> page, bool hasMore) = store.ListFiles(purpose, pageSize, after);
        return new FileList(page.Select(FileObject.From).ToList(), hasMore);
    }

    public FileObject Get(string id) => FileObject.From(Find(id));

    /// <summary>The stored bytes, streamed.</summary>
    public (Stream Content, StoredFile File) OpenContent(string id)
    {
        StoredFile file = Find(id);
        return (File.OpenRead(store.ContentPath(file.Id)), file);
    }

    public FileDeleted Delete(string id) =>
        store.DeleteFile(id) ? new FileDeleted(id) : throw NoSuchFile(id);

    private StoredFile Find(string id) => store.FindFile(id) ?? throw NoSuchFile(id);

    private static ApiException NoSuchFile(string id) =>
        new(StatusCodes.Status404NotFound, $"No such File object: {id}", param: "id");

    private static async Task CopyWithLimitAsync(Stream source, string path, long limit, CancellationToken cancellationToken)
    {
        await using var target = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
        byte[] buffer = new byte[1 << 16];
        long total = 0;
        int read;
        while ((read = await ReadUploadAsync(() => source.ReadAsync(buffer, cancellationToken).AsTask())) > 0)
        {
            total += read;
            if (total > limit)
            {
                throw new ApiException(StatusCodes.Status413PayloadTooLarge,
                    $"The file is larger than this server's limit of {limit} bytes (--max-upload-size).", param: "file", code: "file_too_large");
            }
            await target.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
        }
        await target.FlushAsync(cancellationToken);
        target.Flush(flushToDisk: true);
    }

    /// <summary>
    /// One read of the multipart body. MultipartReader says IOException when the body ends before its
    /// closing boundary (a client that stopped mid-upload); that is the client's request, not a server
    /// failure. Only reads go through here, so a disk that fails while the upload is written stays a 500.
    /// </summary>
    private static async Task<T> ReadUploadAsync<T>(Func<Task<T>> read)
    {
        try
        {
            return await read();
        }
        catch (IOException e) when (e is not BadHttpRequestException)
        {
            // BadHttpRequestException (an IOException too) is Kestrel's own refusal, such as a body over the size limit; it keeps its status.
            throw new ApiException(StatusCodes.Status400BadRequest,
                "The multipart body ended before its closing boundary: the upload is incomplete, and nothing was kept.", param: "file", code: "incomplete_upload");
        }
    }

    private static async Task<string> ReadSmallFieldAsync(Stream body, CancellationToken cancellationToken)
    {
        char[] buffer = new char[MaxPurposeLength + 1];
        using var reader = new StreamReader(body);
        int read = await reader.ReadBlockAsync(buffer.AsMemory(), cancellationToken);
        return new string(buffer, 0, Math.Min(read, MaxPurposeLength));
    }
}
