using System.Text.Json;

namespace LlmServer.ChatTemplates.Tests;

/// <summary>
/// Renders real Hugging Face chat templates and focused Jinja snippets. Expected strings follow Jinja
/// semantics with trim_blocks and lstrip_blocks on, which is how transformers renders templates.
/// </summary>
public sealed class ChatTemplateTests
{
    private static readonly Dictionary<string, object?> SpecialTokens = new()
    {
        ["bos_token"] = "<s>",
        ["eos_token"] = "</s>",
    };

    // Qwen2-7B-Instruct: ChatML with a default system message when the conversation has none.
    private const string Qwen2ChatMl =
        """{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}""";

    // Llama-2-7b-chat-hf.
    private const string Llama2Chat =
        """{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}""";

    // zephyr-7b-beta: one tag per line, relying on trim_blocks; string literals hold real newlines.
    private const string Zephyr = """
        {% for message in messages %}
        {% if message['role'] == 'user' %}
        {{ '<|user|>
        ' + message['content'] + eos_token }}
        {% elif message['role'] == 'system' %}
        {{ '<|system|>
        ' + message['content'] + eos_token }}
        {% elif message['role'] == 'assistant' %}
        {{ '<|assistant|>
        '  + message['content'] + eos_token }}
        {% endif %}
        {% if loop.last and add_generation_prompt %}
        {{ '<|assistant|>' }}
        {% endif %}
        {% endfor %}
        """;

    // Mistral-7B-Instruct-v0.1.
    private const string MistralInstruct =
        """{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}""";

    // Mistral-7B-Instruct-v0.3: counts turns in a namespace because a plain `set` inside the loop
    // would be discarded at the end of each iteration.
    private const string MistralV3WithNamespace = """
        {%- if messages[0]["role"] == "system" %}
            {%- set system_message = messages[0]["content"] %}
            {%- set loop_messages = messages[1:] %}
        {%- else %}
            {%- set loop_messages = messages %}
        {%- endif %}
        {%- if not tools is defined %}
            {%- set tools = none %}
        {%- endif %}
        {%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

        {#- This block checks for alternating user/assistant messages, skipping tool calling messages #}
        {%- set ns = namespace() %}
        {%- set ns.index = 0 %}
        {%- for message in loop_messages %}
            {%- if not (message.role == "tool" or message.role == "tool_results" or (message.tool_calls is defined and message.tool_calls is not none)) %}
                {%- if (message["role"] == "user") != (ns.index % 2 == 0) %}
                    {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
                {%- endif %}
                {%- set ns.index = ns.index + 1 %}
            {%- endif %}
        {%- endfor %}

        {{- bos_token }}
        {%- for message in loop_messages %}
            {%- if message["role"] == "user" %}
                {%- if tools is not none and (message == user_messages[-1]) %}
                    {{- "[AVAILABLE_TOOLS] [" }}
                    {%- for tool in tools %}
                        {%- set tool = tool.function %}
                        {{- '{"type": "function", "function": {' }}
                        {%- for key, val in tool.items() if key != "return" %}
                            {%- if val is string %}
                                {{- '"' + key + '": "' + val + '"' }}
                            {%- else %}
                                {{- '"' + key + '": ' + val|tojson }}
                            {%- endif %}
                            {%- if not loop.last %}
                                {{- ", " }}
                            {%- endif %}
                        {%- endfor %}
                        {{- "}}" }}
                        {%- if not loop.last %}
                            {{- ", " }}
                        {%- else %}
                            {{- "]" }}
                        {%- endif %}
                    {%- endfor %}
                    {{- "[/AVAILABLE_TOOLS]" }}
                    {%- endif %}
                {%- if loop.last and system_message is defined %}
                    {{- "[INST] " + system_message + "\n\n" + message["content"] + "[/INST]" }}
                {%- else %}
                    {{- "[INST] " + message["content"] + "[/INST]" }}
                {%- endif %}
            {%- elif message["role"] == "assistant" %}
                {{- " " + message["content"]|trim + eos_token}}
            {%- else %}
                {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
            {%- endif %}
        {%- endfor %}

        """;

    // Meta-Llama-3-8B-Instruct: `message['content'] | trim` binds before the `+` around it.
    private const string Llama3Instruct =
        """{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}""";

    // Qwen2.5-7B-Instruct, reduced to the system/tools header and plain turns.
    private const string Qwen25WithTools = """
        {%- if tools %}
            {{- '<|im_start|>system\n' }}
            {%- if messages[0]['role'] == 'system' %}
                {{- messages[0]['content'] }}
            {%- else %}
                {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
            {%- endif %}
            {{- "\n\n# Tools\n\n<tools>" }}
            {%- for tool in tools %}
                {{- "\n" }}
                {{- tool | tojson }}
            {%- endfor %}
            {{- "\n</tools><|im_end|>\n" }}
        {%- else %}
            {%- if messages[0]['role'] == 'system' %}
                {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
            {%- else %}
                {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
            {%- endif %}
        {%- endif %}
        {%- for message in messages %}
            {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
                {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
            {%- endif %}
        {%- endfor %}
        {%- if add_generation_prompt %}
            {{- '<|im_start|>assistant\n' }}
        {%- endif %}
        """;

    private const string WeatherToolsJson = """
        [{"type": "function", "function": {"name": "get_weather", "description": "Get weather",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
        """;

    private const string WeatherToolJsonAsPythonDumps =
        """{"type": "function", "function": {"name": "get_weather", "description": "Get weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}""";

    [Fact]
    public void Qwen2ChatMl_AddsDefaultSystemMessage_WhenFirstMessageIsNotSystem()
    {
        string prompt = Render(Qwen2ChatMl, [new("user", "Hello!")], addGenerationPrompt: true);

        Assert.Equal(
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            + "<|im_start|>user\nHello!<|im_end|>\n"
            + "<|im_start|>assistant\n",
            prompt);
    }

    [Fact]
    public void Qwen2ChatMl_KeepsCallerSystemMessage_AndOmitsGenerationPromptWhenNotRequested()
    {
        string prompt = Render(
            Qwen2ChatMl,
            [new("system", "You are terse."), new("user", "Hi"), new("assistant", "Hello.")],
            addGenerationPrompt: false);

        Assert.Equal(
            "<|im_start|>system\nYou are terse.<|im_end|>\n"
            + "<|im_start|>user\nHi<|im_end|>\n"
            + "<|im_start|>assistant\nHello.<|im_end|>\n",
            prompt);
    }

    [Fact]
    public void Llama2Chat_FoldsSystemPromptIntoFirstUserTurn_AndStripsOnlyTheOuterEnds()
    {
        string prompt = Render(
            Llama2Chat,
            [new("system", "Be brief."), new("user", " What is 2+2? "), new("assistant", " 4 "), new("user", "Thanks")],
            addGenerationPrompt: true);

        Assert.Equal(
            "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n What is 2+2? [/INST] 4 </s><s>[INST] Thanks [/INST]",
            prompt);
    }

    [Fact]
    public void Llama2Chat_WithoutSystemMessage_RendersPlainInstBlocks()
    {
        string prompt = Render(Llama2Chat, [new("user", "Hi"), new("assistant", "Hello"), new("user", "Bye")], true);

        Assert.Equal("<s>[INST] Hi [/INST] Hello </s><s>[INST] Bye [/INST]", prompt);
    }

    [Theory]
    [InlineData("user", "user")]
    [InlineData("assistant", "user")]
    [InlineData("system", "user", "user")]
    public void Llama2Chat_RaisesTheTemplatesMessage_WhenRolesDoNotAlternate(params string[] roles)
    {
        var messages = roles.Select(role => new ChatMessage(role, "text")).ToList();

        var error = Assert.Throws<ChatTemplateException>(() => Render(Llama2Chat, messages, true));

        Assert.Equal("Conversation roles must alternate user/assistant/user/assistant/...", error.Message);
    }

    [Theory]
    [InlineData(true, "<|system|>\nSYS</s>\n<|user|>\nHi</s>\n<|assistant|>\n")]
    [InlineData(false, "<|system|>\nSYS</s>\n<|user|>\nHi</s>\n")]
    public void Zephyr_TrimBlocksRemovesNewlinesAfterBlockTagsOnly(bool addGenerationPrompt, string expected)
    {
        string prompt = Render(Zephyr, [new("system", "SYS"), new("user", "Hi")], addGenerationPrompt);

        Assert.Equal(expected, prompt);
    }

    [Fact]
    public void MistralInstruct_RendersInstBlocksWithEosAfterAssistantTurns()
    {
        string prompt = Render(MistralInstruct, [new("user", "Hi"), new("assistant", "Hello"), new("user", "Bye")], true);

        Assert.Equal("<s>[INST] Hi [/INST]Hello</s> [INST] Bye [/INST]", prompt);
    }

    [Fact]
    public void MistralInstruct_RejectsRolesOtherThanUserAndAssistant()
    {
        var error = Assert.Throws<ChatTemplateException>(
            () => Render(MistralInstruct, [new("user", "Hi"), new("system", "Be nice")], true));

        Assert.Equal("Only user and assistant roles are supported!", error.Message);
    }

    [Fact]
    public void MistralV3_MovesSystemMessageIntoLastUserTurn()
    {
        string prompt = Render(
            MistralV3WithNamespace,
            [new("system", "You are terse."), new("user", "Hello!"), new("assistant", " Hi there. "), new("user", "How are you?")],
            addGenerationPrompt: true);

        Assert.Equal("<s>[INST] Hello![/INST] Hi there.</s>[INST] You are terse.\n\nHow are you?[/INST]", prompt);
    }

    [Fact]
    public void MistralV3_NamespaceCounterDetectsBrokenAlternation()
    {
        var error = Assert.Throws<ChatTemplateException>(() => Render(
            MistralV3WithNamespace,
            [new("system", "S"), new("user", "a"), new("assistant", "b"), new("assistant", "c")],
            addGenerationPrompt: true));

        Assert.Equal(
            "After the optional system message, conversation roles must alternate user/assistant/user/assistant/...",
            error.Message);
    }

    [Fact]
    public void MistralV3_RendersToolsPassedAsJsonBeforeLastUserMessage()
    {
        var variables = new Dictionary<string, object?>(SpecialTokens)
        {
            ["tools"] = JsonDocument.Parse(WeatherToolsJson).RootElement,
        };

        string prompt = ChatTemplate.Parse(MistralV3WithNamespace)
            .Render([new("user", "What's the weather in Paris?")], addGenerationPrompt: true, variables);

        Assert.Equal(
            """<s>[AVAILABLE_TOOLS] [{"type": "function", "function": {"name": "get_weather", "description": "Get weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}][/AVAILABLE_TOOLS][INST] What's the weather in Paris?[/INST]""",
            prompt);
    }

    [Fact]
    public void Llama3Instruct_TrimsContentAndPrefixesBosOnlyOnce()
    {
        string prompt = Render(Llama3Instruct, [new("system", "  Sys  "), new("user", "Hi\n")], addGenerationPrompt: true);

        Assert.Equal(
            "<s><|start_header_id|>system<|end_header_id|>\n\nSys<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\n",
            prompt);
    }

    [Fact]
    public void Qwen25_WithoutTools_UsesItsDefaultSystemPrompt()
    {
        string prompt = Render(Qwen25WithTools, [new("user", "Hi")], addGenerationPrompt: true);

        Assert.Equal(
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
            prompt);
    }

    [Fact]
    public void Qwen25_WithTools_SerializesEachToolLikePythonJsonDumps()
    {
        var variables = new Dictionary<string, object?> { ["tools"] = JsonDocument.Parse(WeatherToolsJson).RootElement };

        string prompt = ChatTemplate.Parse(Qwen25WithTools).Render([new("user", "Weather?")], addGenerationPrompt: true, variables);

        Assert.Equal(
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n\n# Tools\n\n<tools>\n"
            + WeatherToolJsonAsPythonDumps
            + "\n</tools><|im_end|>\n<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n",
            prompt);
    }

    [Theory]
    // trim_blocks drops the newline after a block tag; a variable tag keeps it.
    [InlineData("{% if true %}\nA\n{% endif %}\n{{ 'B' }}\nC", "A\nB\nC")]
    // lstrip_blocks removes indentation in front of a block tag that starts its line...
    [InlineData("<ul>\n    {% for x in [1, 2] %}\n    <li>{{ x }}</li>\n    {% endfor %}\n</ul>", "<ul>\n    <li>1</li>\n    <li>2</li>\n</ul>")]
    // ...but not in front of one that follows other text, nor in front of a variable tag.
    [InlineData("a  {% if true %}b{% endif %}\n  {{ 'c' }}", "a  b  c")]
    // '-' strips all whitespace, newlines included, on its side of the tag.
    [InlineData("a \n {%- if true -%} \n b \n {%- endif -%} \n c", "abc")]
    [InlineData("x \n {{- 'y' -}} \n z", "xyz")]
    // '+' switches lstrip_blocks (left) and trim_blocks (right) off for one tag.
    [InlineData("  {%+ if true +%}\nx{% endif %}", "  \nx")]
    // Comments vanish and follow the same rules as block tags.
    [InlineData("a\n  {# note #}\nb{#- note -#}  c", "a\nbc")]
    // Jinja drops exactly one trailing newline of the template source.
    [InlineData("hello\n\n", "hello\n")]
    // Windows newlines are normalised before the rules apply.
    [InlineData("{% if true %}\r\nA\r\n{% endif %}\r\n", "A\n")]
    [InlineData("{% raw %}{{ not evaluated }} {% if %}{% endraw %}", "{{ not evaluated }} {% if %}")]
    public void WhitespaceControl_FollowsJinjaWithTrimAndLstripBlocks(string template, string expected)
    {
        Assert.Equal(expected, Render(template));
    }

    [Theory]
    [InlineData("{{ 1 + 2 * 3 }}|{{ (1 + 2) * 3 }}|{{ 10 - 3 - 2 }}|{{ 2 ** 3 ** 2 }}", "7|9|5|64")]
    [InlineData("{{ 7 / 2 }}|{{ 10 / 5 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ -7 % 3 }}|{{ 7 % -3 }}", "3.5|2.0|3|-4|2|-2")]
    [InlineData("{{ 1.5 + 1 }}|{{ 0.1 + 0.2 }}|{{ 1e-5 }}|{{ 1e16 }}|{{ 3.0 }}|{{ -2 }}", "2.5|0.30000000000000004|1e-05|1e+16|3.0|-2")]
    [InlineData("{{ 'a' ~ 1 ~ none ~ true }}|{{ 'ab' * 3 }}|{{ [1, 2] + [3] }}|{{ 2 * 3 ~ 4 }}", "a1NoneTrue|ababab|[1, 2, 3]|64")]
    [InlineData("{{ 1 < 2 < 3 }}|{{ 3 > 2 > 2 }}|{{ 1 == 1.0 }}|{{ 'a' != 'b' }}|{{ [1, 2] < [1, 3] }}", "True|False|True|True|True")]
    [InlineData("{{ 'at' in 'cat' }}|{{ 2 not in [1, 2] }}|{{ 'k' in {'k': 1} }}|{{ not 1 == 2 }}", "True|False|True|True")]
    [InlineData("{{ '' or 'fallback' }}|{{ 'a' and 'b' }}|{{ 0 and 1 }}|{{ none or 'x' }}", "fallback|b|0|x")]
    [InlineData("{{ 'yes' if 1 else 'no' }}|{{ 'yes' if 0 else 'no' }}|{{ 'only' if false }}|", "yes|no||")]
    [InlineData("{{ none }}|{{ True }}|{{ [1, 'a', none, false, 1.0] }}|{{ {'k': 'v'} }}|{{ (1, 'a') }}", "None|True|[1, 'a', None, False, 1.0]|{'k': 'v'}|(1, 'a')")]
    [InlineData("""{{ "it's" }}|{{ 'tab\there' }}|{{ 'a' 'b' }}|{{ '\u00e9\x41' }}|{{ 'back\\slash' }}""", "it's|tab\there|ab|éA|back\\slash")]
    [InlineData("{% set xs = [1, 2, 3, 4, 5] %}{{ xs[1:] }}|{{ xs[::-1] }}|{{ xs[-2:] }}|{{ xs[:-1] }}|{{ xs[1:4:2] }}|{{ xs[-1] }}|{{ xs.0 }}", "[2, 3, 4, 5]|[5, 4, 3, 2, 1]|[4, 5]|[1, 2, 3, 4]|[2, 4]|5|1")]
    [InlineData("{{ 'hello'[::-1] }}|{{ 'hello'[1:3] }}|{{ 'hello'[0] }}|{{ {'a': {'b': 1}}['a']['b'] }}", "olleh|el|h|1")]
    public void Expressions_FollowPythonSemantics(string template, string expected)
    {
        Assert.Equal(expected, Render(template));
    }

    [Theory]
    [InlineData("{{ '  hi  ' | trim }}|{{ 'Hi' | upper }}|{{ 'Hi' | lower }}|{{ 'hELLO world' | capitalize }}", "hi|HI|hi|Hello world")]
    [InlineData("{{ [3, 1, 2] | length }}|{{ 'abc' | length }}|{{ {'a': 1} | length }}|{{ 'abc' | count }}", "3|3|1|3")]
    [InlineData("{{ [3, 1, 2] | first }}|{{ [3, 1, 2] | last }}|{{ [1, 2, 3] | join('-') }}|{{ ['a', 'b'] | join }}", "3|2|1-2-3|ab")]
    [InlineData("{{ 'aXbX' | replace('X', 'y') }}|{{ 'aaa' | replace('a', 'b', 2) }}|{{ 42 | string }}|{{ none | string }}", "ayby|bba|42|None")]
    [InlineData("{{ '42' | int + 1 }}|{{ '3.7' | int }}|{{ 'x' | int }}|{{ 'x' | int(7) }}|{{ 3.9 | int }}|{{ '2.5' | float }}", "43|3|0|7|3|2.5")]
    [InlineData("{{ missing | default('d') }}|{{ '' | default('d') }}|{{ '' | default('d', true) }}|{{ missing | d('short') }}", "d||d|short")]
    [InlineData("{{ [3, 1, 2] | sort | list }}|{{ ['b', 'A', 'c'] | sort | join }}|{{ [1, 2, 2, 1] | unique | list }}|{{ [1, 2, 3] | reverse | list }}", "[1, 2, 3]|Abc|[1, 2]|[3, 2, 1]")]
    [InlineData("{{ [1, 2, 3] | sum }}|{{ [1, 5, 3] | max }}|{{ [4, 2, 8] | min }}|{{ -3 | abs }}|{{ 2.567 | round(2) }}", "6|5|2|3|2.57")]
    [InlineData("{{ [1, 2, 3, 4] | select('odd') | list }}|{{ [1, 0, 2] | reject | list }}|{{ ['a', 'b'] | map('upper') | join }}", "[1, 3]|[0]|AB")]
    [InlineData("{{ {'b': 1, 'a': 2} | dictsort }}|{{ {'a': 1} | items | list }}|{{ 'hello world-wide' | title }}", "[('a', 2), ('b', 1)]|[('a', 1)]|Hello World-Wide")]
    [InlineData("{{ 'a\nb\n\nc' | indent(2) }}|{{ '<b> & \"q\"' | e }}|{{ 'one two  three' | wordcount }}", "a\n  b\n\n  c|&lt;b&gt; &amp; &#34;q&#34;|3")]
    public void Filters_BehaveLikeJinja(string template, string expected)
    {
        Assert.Equal(expected, Render(template));
    }

    [Fact]
    public void Filters_SelectAndMapByAttributeWorkOnMessages()
    {
        string prompt = Render(
            "{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(', ') }}"
            + "|{{ messages | rejectattr('role', 'equalto', 'user') | list | length }}",
            [new("system", "s"), new("user", "a"), new("assistant", "b"), new("user", "c")]);

        Assert.Equal("a, c|2", prompt);
    }

    [Theory]
    [InlineData("{{ {'a': 1, 'b': [1, 2.5, true, none]} | tojson }}", """{"a": 1, "b": [1, 2.5, true, null]}""")]
    [InlineData("""{{ 'quote " back \\ newline \n é' | tojson }}""", """ "quote \" back \\ newline \n é" """)]
    [InlineData("{{ 'é' | tojson(ensure_ascii=true) }}|{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}", """ "\u00e9"|{"a": 2, "b": 1}""")]
    [InlineData("{{ {'a': [1, {}], 'b': []} | tojson(indent=2) }}", "{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": []\n}")]
    public void ToJson_MatchesPythonJsonDumpsLayout(string template, string expected)
    {
        Assert.Equal(expected.Trim(), Render(template));
    }

    [Theory]
    [InlineData("{{ '  x  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ '  x'.lstrip() }}|{{ 'x  '.rstrip() }}", "x|hi|x|x")]
    [InlineData("{{ 'hello'.startswith('he') }}|{{ 'hello'.endswith(('zz', 'lo')) }}|{{ 'hello'.endswith('he') }}", "True|True|False")]
    [InlineData("{{ ' a b  c '.split() }}|{{ 'a,b,c'.split(',') }}|{{ 'a,b,c'.split(',', 1) }}|{{ 'x</think>y'.split('</think>')[-1] }}", "['a', 'b', 'c']|['a', 'b', 'c']|['a', 'b,c']|y")]
    [InlineData("{{ 'ab'.upper() }}|{{ 'AB'.lower() }}|{{ \"they're bill's\".title() }}|{{ ', '.join(['x', 'y']) }}", "AB|ab|They'Re Bill'S|x, y")]
    [InlineData("{% set d = {'a': 1, 'b': 2} %}{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{{ d.get('a') }}|{{ d.get('z') }}|{{ d.get('z', 9) }}|{{ d.a }}", "a=1;b=2;|1|None|9|1")]
    public void Methods_MatchPythonStrAndDict(string template, string expected)
    {
        Assert.Equal(expected, Render(template));
    }

    [Theory]
    [InlineData("{{ 'a' is string }}|{{ 1 is string }}|{{ none is none }}|{{ 0 is none }}|{{ 1 is number }}", "True|False|True|False|True")]
    [InlineData("{{ 1 is integer }}|{{ 1.0 is float }}|{{ {} is mapping }}|{{ true is boolean }}|{{ 4 is even }}|{{ 3 is odd }}", "True|True|True|True|True|True")]
    [InlineData("{{ 6 is divisibleby 3 }}|{{ 6 is divisibleby(4) }}|{{ 'x' is equalto 'x' }}|{{ 2 is in [1, 2] }}|{{ 'a' is not upper }}", "True|False|True|True|True")]
    public void Tests_EvaluateIsExpressions(string template, string expected)
    {
        Assert.Equal(expected, Render(template));
    }

    [Fact]
    public void ForLoop_ExposesLoopVariables()
    {
        string output = Render(
            "{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.cycle('o', 'e') }} {% endfor %}");

        Assert.Equal("10TrueFalse33o 21FalseFalse32e 32FalseTrue31o ", output);
    }

    [Theory]
    [InlineData("{% for x in [1, 2, 3, 4] if x is even %}{{ x }}/{{ loop.length }} {% endfor %}", "2/2 4/2 ")]
    [InlineData("{% for x in [] %}item{% else %}empty{% endfor %}", "empty")]
    [InlineData("{% for x in range(6) %}{% if x == 1 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}", "023")]
    [InlineData("{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }},{% endfor %}|{{ range(2, 10, 3) | list }}|{{ range(3) | list }}", "3,7,|[2, 5, 8]|[0, 1, 2]")]
    [InlineData("{% for c in 'ab' %}{{ c }}.{% endfor %}{% for k in {'x': 1, 'y': 2} %}{{ k }}{% endfor %}", "a.b.xy")]
    public void ForLoop_SupportsFiltersElseBreakContinueAndUnpacking(string template, string expected)
    {
        Assert.Equal(expected, Render(template));
    }

    [Fact]
    public void Set_InsideLoopIsScopedToTheIteration_WhileNamespaceCarriesStateOut()
    {
        string output = Render(
            "{% set total = 0 %}{% set ns = namespace(total=0, seen=false) %}"
            + "{% for x in [1, 2, 3] %}{% set total = total + x %}{% set ns.total = ns.total + x %}"
            + "{% if x == 2 %}{% set ns.seen = true %}{% endif %}{% endfor %}"
            + "{{ total }} {{ ns.total }} {{ ns.seen }}");

        Assert.Equal("0 6 True", output);
    }

    [Fact]
    public void Set_AtTopLevelAndInsideIfIsVisibleAfterwards()
    {
        string output = Render(
            "{% if messages[0].role == 'system' %}{% set offset = 1 %}{% else %}{% set offset = 0 %}{% endif %}"
            + "{% set a, b = 'x', 'y' %}{% set captured %}[{{ offset }}]{% endset %}{{ offset }}{{ a }}{{ b }}{{ captured }}",
            [new("system", "s")]);

        Assert.Equal("1xy[1]", output);
    }

    [Fact]
    public void Macros_TakePositionalKeywordAndDefaultArguments()
    {
        string output = Render(
            "{% macro turn(role, text='') %}<{{ role }}>{{ text }}{% endmacro %}"
            + "{{ turn('user', 'hi') }}{{ turn(role='bot') }}{{ turn('sys', text='x') }}");

        Assert.Equal("<user>hi<bot><sys>x", output);
    }

    [Theory]
    [InlineData("[{{ missing }}]", "[]")]
    [InlineData("{{ missing is defined }}|{{ missing is not defined }}|{{ missing is undefined }}", "False|True|True")]
    [InlineData("{% if missing %}yes{% else %}no{% endif %}|{{ not missing }}|{{ missing | length }}", "no|True|0")]
    [InlineData("{% for x in missing %}{{ x }}{% else %}none{% endfor %}|{{ missing | default('fallback') }}", "none|fallback")]
    [InlineData("{{ messages[0].name is defined }}|{{ messages[0]['missing'] is defined }}|{{ messages[5] is defined }}", "False|False|False")]
    [InlineData("{{ 'a' if missing is defined and missing else 'b' }}|{{ missing == missing }}|{{ 'x' in missing }}", "b|True|False")]
    public void Undefined_IsFalsyEmptyAndTestable(string template, string expected)
    {
        Assert.Equal(expected, Render(template, [new("user", "hi")]));
    }

    [Theory]
    [InlineData("{{ missing.attribute }}", "'missing' is undefined")]
    [InlineData("{{ missing + 1 }}", "'missing' is undefined")]
    [InlineData("{{ missing() }}", "'missing' is undefined")]
    [InlineData("{{ messages[0].nope.deeper }}", "'dict object' has no attribute 'nope'")]
    public void Undefined_FailsWhenUsedBeyondTesting(string template, string expectedReason)
    {
        var error = Assert.Throws<ChatTemplateException>(() => Render(template, [new("user", "hi")]));

        Assert.Equal($"Chat template error on line 1: {expectedReason}", error.Message);
    }

    [Fact]
    public void RaiseException_PassesTheTemplateMessageThroughUnchanged()
    {
        var template = ChatTemplate.Parse("line one\n{% if messages | length == 0 %}\n{{ raise_exception('No messages: ' ~ 0) }}\n{% endif %}");

        var error = Assert.Throws<ChatTemplateException>(() => template.Render([], addGenerationPrompt: false));

        Assert.Equal("No messages: 0", error.Message);
    }

    [Theory]
    [InlineData("{% if x %}\nno end", "line 2", "expected 'elif' or 'else' or 'endif' for the block opened on line 1")]
    [InlineData("a\nb\n{{ 1 + }}", "line 3", "unexpected '}}'")]
    [InlineData("{% for x in xs %}\n{% endif %}", "line 2", "'endif'")]
    [InlineData("\n{% frobnicate %}", "line 2", "unknown tag 'frobnicate'")]
    [InlineData("{{ x | no_such_filter }}", "line 1", "no filter named 'no_such_filter'")]
    [InlineData("{{ x is no_such_test }}", "line 1", "no test named 'no_such_test'")]
    [InlineData("ok\n{# never closed", "line 2", "missing end of comment tag")]
    [InlineData("{{ 'unterminated }}", "line 1", "unterminated string literal")]
    [InlineData("{{ (1 ] }}", "line 1", "unexpected ']', expected ')'")]
    [InlineData("{% break %}", "line 1", "'break' is only allowed inside a for loop")]
    [InlineData("{{ 1 }", "line 1", "unexpected '}'")]
    public void Parse_ReportsSyntaxErrorsWithTheirLine(string template, string expectedLine, string expectedDetail)
    {
        var error = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(template));

        Assert.StartsWith("Chat template syntax error on " + expectedLine + ":", error.Message);
        Assert.Contains(expectedDetail, error.Message);
    }

    [Fact]
    public void Render_ReportsRuntimeErrorsWithTheirLine()
    {
        var template = ChatTemplate.Parse("ok\n\n{{ 'a' + 1 }}");

        var error = Assert.Throws<ChatTemplateException>(() => template.Render([], false));

        Assert.Equal("Chat template error on line 3: unsupported operand type(s) for +: 'str' and 'int'", error.Message);
    }

    [Fact]
    public void Render_ExposesMessageNameOnlyWhenSet()
    {
        string output = Render(
            "{% for m in messages %}{{ m.role }}:{{ m.name if m.name is defined else '-' }}:{{ m | length }} {% endfor %}",
            [new("user", "hi", Name: "bob"), new("assistant", "yo")]);

        Assert.Equal("user:bob:3 assistant:-:2 ", output);
    }

    [Fact]
    public void Render_ConvertsExtraVariablesFromClrAndJsonValues()
    {
        var variables = new Dictionary<string, object?>
        {
            ["number"] = 3,
            ["ratio"] = 0.5f,
            ["flag"] = true,
            ["nothing"] = null,
            ["names"] = new[] { "a", "b" },
            ["options"] = new Dictionary<string, object?> { ["depth"] = 2, ["tags"] = new List<string> { "x" } },
            ["json"] = JsonDocument.Parse("""{"n": 1, "f": 1.25, "s": "t", "l": [true, null]}""").RootElement,
        };

        string output = ChatTemplate.Parse(
                "{{ number + 1 }}|{{ ratio }}|{{ flag }}|{{ nothing is none }}|{{ names | join(',') }}|{{ options.depth }}{{ options.tags[0] }}|{{ json.n + json.f }}{{ json.s }}{{ json.l }}")
            .Render([], false, variables);

        Assert.Equal("4|0.5|True|True|a,b|2x|2.25t[True, None]", output);
    }

    [Fact]
    public void Render_DedicatedParametersWinOverExtraVariablesOfTheSameName()
    {
        var variables = new Dictionary<string, object?> { ["messages"] = "ignored", ["add_generation_prompt"] = false };

        string output = ChatTemplate.Parse("{{ messages | length }} {{ add_generation_prompt }}")
            .Render([new("user", "a"), new("user", "b")], addGenerationPrompt: true, variables);

        Assert.Equal("2 True", output);
    }

    [Fact]
    public void Render_FailsLikeJinjaWhenATemplateConcatenatesAMissingSpecialToken()
    {
        var template = ChatTemplate.Parse(Llama2Chat);

        var error = Assert.Throws<ChatTemplateException>(() => template.Render([new("user", "Hi")], true));

        Assert.Equal("Chat template error on line 1: 'bos_token' is undefined", error.Message);
    }

    [Fact]
    public void Parse_KeepsTheSourceAndTheTemplateIsReusableAcrossRenders()
    {
        var template = ChatTemplate.Parse(Qwen2ChatMl);

        var outputs = Enumerable.Range(0, 8).AsParallel().AsOrdered()
            .Select(i => template.Render([new("user", $"message {i}")], addGenerationPrompt: false))
            .ToList();

        Assert.Same(Qwen2ChatMl, template.Source);
        Assert.All(Enumerable.Range(0, 8), i => Assert.Equal(
            $"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nmessage {i}<|im_end|>\n", outputs[i]));
    }

    [Fact]
    public void StrftimeNow_IsAvailableAndFormatsLikePython()
    {
        string year = Render("{{ strftime_now('%Y') }}");

        Assert.Matches("^[0-9]{4}$", year);
        Assert.Equal(
            "26 Jul 2024|Friday July 07|09:07:03 AM|208|%",
            PythonStrftime.Format(new DateTime(2024, 7, 26, 9, 7, 3), "%d %b %Y|%A %B %m|%I:%M:%S %p|%j|%%"));
    }

    [Fact]
    public void GenerationBlock_RendersItsBodyInPlace()
    {
        string output = Render("{% for m in messages %}{% generation %}[{{ m.content }}]{% endgeneration %}{% endfor %}", [new("assistant", "a")]);

        Assert.Equal("[a]", output);
    }

    private static string Render(string template, IReadOnlyList<ChatMessage>? messages = null, bool addGenerationPrompt = false) =>
        ChatTemplate.Parse(template).Render(messages ?? [], addGenerationPrompt, SpecialTokens);
    [Fact]
    public void Render_ExposesToolCallsAndToolCallId_InOpenAisShape_OnlyWhenSet()
    {
        using JsonDocument arguments = JsonDocument.Parse("""{"city": "Paris", "days": 2}""");
        ChatMessage[] messages =
        [
            new("assistant", "") { ToolCalls = [new ChatToolCall("call_1", "get_weather", arguments.RootElement.Clone())] },
            new("tool", "18C") { ToolCallId = "call_1" },
            new("user", "thanks"),
        ];
        var template = ChatTemplate.Parse(
            // Llama 3.1's template asks `'tool_calls' in message`: the key is there only on a turn that called tools.
            "{% for m in messages %}{{ m.role }}|{{ m.tool_calls is defined }}|{{ 'tool_calls' in m }}|{{ m.tool_call_id is defined }}|" +
            "{% for c in m.tool_calls or [] %}{{ c.id }} {{ c.type }} {{ c.function.name }} {{ c.function.arguments | tojson }} {{ c.function.arguments.days + 1 }}{% endfor %}" +
            "{% if m.tool_call_id is defined %}{{ m.tool_call_id }}:{{ m.content }}{% endif %};{% endfor %}");

        string rendered = template.Render(messages, addGenerationPrompt: false);

        Assert.Equal(
            "assistant|True|True|False|call_1 function get_weather {\"city\": \"Paris\", \"days\": 2} 3;" +
            "tool|False|False|True|call_1:18C;" +
            "user|False|False|False|;", rendered);
    }

    [Fact]
    public void RenderMessages_PassesEveryFieldOfAJsonMessage_ToTheTemplate()
    {
        // An assistant turn with tool_calls: ChatMessage has no such field, so RenderMessages takes the JSON as is.
        using JsonDocument messages = JsonDocument.Parse(
            """[{"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}]""");
        var template = ChatTemplate.Parse(
            "{% for m in messages %}{{ m.role }}:{% for c in m.tool_calls %}{{ c.function.name }}{{ c.function.arguments | tojson }}{% endfor %}{% endfor %}");

        string rendered = template.RenderMessages(messages.RootElement.EnumerateArray().Select(m => (object?)m).ToList(), addGenerationPrompt: false);

        Assert.Equal("""assistant:get_weather{"city": "Paris"}""", rendered);
    }
}
