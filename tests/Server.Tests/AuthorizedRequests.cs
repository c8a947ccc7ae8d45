using System.Net;
using System.Net.Http.Headers;
using System.Text;

namespace LlmServer.Tests;

/// <summary>The raw HTTP calls the admin-keyed API tests make: a Bearer key, a JSON body, a multipart upload.</summary>
internal static class AuthorizedRequests
{
    public static async Task<(HttpStatusCode Status, string Body)> SendAsync(HttpClient http, HttpMethod method, string path, string? key,
        string? jsonBody = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (jsonBody is not null)
        {
            request.Content = new StringContent(jsonBody, Encoding.UTF8, "application/json");
        }
        return await SendAsync(http, request, key);
    }

    /// <summary>POST /v1/files as OpenAI's clients send it: multipart with the fields purpose and file.</summary>
    public static async Task<(HttpStatusCode Status, string Body)> UploadAsync(HttpClient http, string content, string filename, string? key)
    {
        using var form = new MultipartFormDataContent();
        form.Add(new StringContent("fine-tune"), "purpose");
        form.Add(new ByteArrayContent(Encoding.UTF8.GetBytes(content)), "file", filename);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/files") { Content = form };
        return await SendAsync(http, request, key);
    }

    private static async Task<(HttpStatusCode Status, string Body)> SendAsync(HttpClient http, HttpRequestMessage request, string? key)
    {
        if (key is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }
        using HttpResponseMessage response = await http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }
}
