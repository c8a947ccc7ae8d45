using LlmServer.FineTuning;

namespace LlmServer.Tests.FineTuning;

public sealed class FineTunedModelNameTests
{
    [Fact]
    public void Names_follow_OpenAIs_shape_with_an_empty_suffix_when_none_was_given()
    {
        Assert.Equal("ft:gpt2:personal:support-bot:ftjob-abc", FineTunedModelName.For("gpt2", "personal", "support-bot", "ftjob-abc"));
        Assert.Equal("ft:gpt2:personal::ftjob-abc", FineTunedModelName.For("gpt2", "personal", null, "ftjob-abc"));
        Assert.Equal("ft:gpt2:personal::ftjob-abc:ckpt-step-1200", FineTunedModelName.ForCheckpoint("ft:gpt2:personal::ftjob-abc", 1200));
    }
}
