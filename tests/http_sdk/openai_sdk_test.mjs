// The official OpenAI Node SDK (npm package `openai`, installed at test time
// by install.sh into the build tree) against lumend's HTTP API:
//   - models.list; chat completion and streaming with the exact greedy text
//     of stories260K (chatml template), equal to the same request over gRPC
//     (`lumen chat`); stream_options.include_usage;
//   - completions with a token-id prompt reproduce llama2.c's reference;
//   - embeddings (a synthetic BERT) equal gRPC Embed's (`lumen embed`);
//   - aborting a stream cancels the request and frees its KV blocks
//     (Admin.GetStats over gRPC, through `lumen stats`);
//   - the SDK's typed errors: BadRequestError with the param,
//     AuthenticationError, NotFoundError, RateLimitError (a full queue);
//   - the README's Node example runs;
//   - tool calling round trips (Qwen2.5's template on stories260K): tools
//     with tool_choice required give tool_calls whose arguments are the
//     tool's JSON, plain and streamed (deltas reassembled equal the plain
//     calls), then a tool message and the final answer.
//
//   node openai_sdk_test.mjs BUILD_DIR TESTDATA_DIR SDK_DIR
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const [build, testdata, sdkDir] = process.argv.slice(2).map((p) => resolve(p));
if (process.argv.length !== 5) {
  console.error('usage: node openai_sdk_test.mjs BUILD_DIR TESTDATA_DIR SDK_DIR');
  process.exit(2);
}
// The SDK lives in the build tree, not beside this file.
const sdk = createRequire(join(sdkDir, 'package.json'))('openai');
const { OpenAI } = sdk;
const API_KEY = 'sdk-test-key';

const lumen = (args, input) =>
  execFileSync(join(build, 'bin/lumen'), args, { input, encoding: 'utf8' });

// Starts lumend on free ports and waits (bounded) until it serves.
async function startLumend(args) {
  const dir = mkdtempSync(join(tmpdir(), 'lumen_sdk_'));
  const logPath = join(dir, 'lumend.log');
  const out = openSync(logPath, 'w');
  const child = spawn(join(build, 'bin/lumend'), [
    ...args, '--listen=127.0.0.1:0', '--http-listen=127.0.0.1:0',
    '--metrics-listen=', `--data-dir=${join(dir, 'data')}`,
  ], { stdio: ['ignore', out, out] });
  const log = () => readFileSync(logPath, 'utf8');
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const text = log();
    const grpc = text.match(/listening on 127\.0\.0\.1:(\d+)/);
    const http = text.match(/HTTP API on http:\/\/127\.0\.0\.1:(\d+)/);
    if (text.includes('serving') && grpc && http) {
      return {
        child, log, dir,
        grpc: `127.0.0.1:${grpc[1]}`,
        baseURL: `http://127.0.0.1:${http[1]}/v1`,
      };
    }
    if (child.exitCode !== null) throw new Error(`lumend exited:\n${text}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  child.kill('SIGKILL');
  throw new Error(`lumend did not start:\n${log()}`);
}

async function stopLumend(d) {
  if (!d || d.child.exitCode !== null) return;
  const exited = new Promise((resolve) => d.child.on('exit', resolve));
  d.child.kill('SIGTERM');
  assert.equal(await exited, 0, 'lumend exit code after SIGTERM');
}

// Admin.GetStats over gRPC.
function stats(d) {
  const line = lumen(['stats', '--addr', d.grpc, '--api-key', API_KEY]);
  const m = line.match(/running (\d+), KV blocks (\d+) used.*generated (\d+) tokens/);
  assert.ok(m, `unexpected stats line: ${line}`);
  return { running: +m[1], kvUsed: +m[2], generated: +m[3] };
}

const SYSTEM = 'You tell short stories.';
const USER = 'Tell me about a dog who lost his hat.';
const MODEL = 'stories260K';

describe('OpenAI Node SDK against lumend', () => {
  let d;       // stories260K + a synthetic BERT, API keys
  let client;  // with the right key, no retries (errors must show as thrown)
  let bertName;

  before(async () => {
    const bert = join(mkdtempSync(join(tmpdir(), 'lumen_sdk_bert_')), 'bert-sdk.gguf');
    lumen(['model', 'synth', '--arch', 'bert', '--dim', '64', '--layers', '2',
      '--heads', '4', '--kv-heads', '4', '--ffn', '128', '--ctx', '128',
      '--seed', '7', '--vocab-from', join(testdata, 'vocab/ggml-vocab-bert-bge.gguf'),
      bert]);
    bertName = 'bert-sdk';
    const keys = join(mkdtempSync(join(tmpdir(), 'lumen_sdk_keys_')), 'keys.txt');
    writeFileSync(keys, `${API_KEY} sdk admin\n`);
    d = await startLumend([
      `--model=${MODEL}=${join(testdata, 'models/stories260K.gguf')}`,
      '--chat-template=chatml', '--ctx-size=16384', '--kv-cache-mb=64',
      `--embedding-model=${bert}`, `--api-keys=${keys}`,
    ]);
    client = new OpenAI({ apiKey: API_KEY, baseURL: d.baseURL, maxRetries: 0 });
  });

  after(async () => {
    await stopLumend(d);
  });

  it('lists the served models', async () => {
    const ids = [];
    for await (const model of client.models.list()) ids.push(model.id);
    assert.deepEqual(ids, [MODEL, bertName]);
    const one = await client.models.retrieve(MODEL);
    assert.equal(one.id, MODEL);
    assert.equal(one.object, 'model');
  });

  it('chat completion: the greedy text equals the same request over gRPC', async () => {
    const viaGrpc = lumen(['chat', '--addr', d.grpc, '--api-key', API_KEY,
      '--system', SYSTEM, '--temperature', '0', '--max-tokens', '48'], `${USER}\n`);
    const expected = viaGrpc.replace(/\n$/, '');
    assert.ok(expected.length > 10, `gRPC gave '${expected}'`);
    const completion = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'system', content: SYSTEM }, { role: 'user', content: USER }],
      max_tokens: 48,
      temperature: 0,
    });
    assert.equal(completion.object, 'chat.completion');
    assert.equal(completion.choices.length, 1);
    assert.equal(completion.choices[0].message.role, 'assistant');
    assert.equal(completion.choices[0].message.content, expected);
    assert.equal(completion.choices[0].finish_reason, 'length');
    assert.equal(completion.usage.completion_tokens, 48);
    assert.equal(completion.usage.total_tokens,
      completion.usage.prompt_tokens + completion.usage.completion_tokens);

    // Streaming (content as text parts, include_usage): the same text.
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'system', content: SYSTEM },
        { role: 'user', content: [{ type: 'text', text: USER }] }],
      max_completion_tokens: 48,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish = null;
    let usage = null;
    let chunks = 0;
    for await (const chunk of stream) {
      ++chunks;
      assert.equal(chunk.object, 'chat.completion.chunk');
      if (chunk.choices.length > 0) {
        text += chunk.choices[0].delta.content ?? '';
        finish = chunk.choices[0].finish_reason ?? finish;
        assert.equal(chunk.usage, null);
      } else {
        usage = chunk.usage;
      }
    }
    assert.ok(chunks >= 3);
    assert.equal(text, expected);
    assert.equal(finish, 'length');
    assert.ok(usage, 'no usage chunk');
    assert.equal(usage.completion_tokens, 48);
    assert.equal(usage.prompt_tokens, completion.usage.prompt_tokens);
  });

  it('completions with a token-id prompt reproduce llama2.c', async () => {
    const ref = JSON.parse(readFileSync(join(testdata, 'models/stories260K.greedy.json'), 'utf8'));
    const completion = await client.completions.create({
      model: MODEL, prompt: [1], max_tokens: 200, temperature: 0,
    });
    assert.equal(completion.object, 'text_completion');
    assert.equal(completion.choices[0].text, ref.printed_text);
    assert.equal(completion.usage.prompt_tokens, 1);
    assert.equal(completion.usage.completion_tokens, 200);
    const stream = await client.completions.create({
      model: MODEL, prompt: [1], max_tokens: 200, temperature: 0, stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    assert.equal(text, ref.printed_text);
  });

  it('embeddings equal gRPC Embed', async () => {
    const input = ['a cat sat on the mat', 'the sun is hot today'];
    const viaGrpc = JSON.parse(lumen(['embed', '--addr', d.grpc, '--api-key', API_KEY,
      '--text', input[0], '--text', input[1]]));
    // The SDK asks for base64 and decodes it; then plain floats.
    for (const format of [undefined, 'float']) {
      const resp = await client.embeddings.create({
        model: bertName, input, ...(format ? { encoding_format: format } : {}),
      });
      assert.equal(resp.data.length, 2);
      assert.ok(resp.usage.prompt_tokens > 4);
      for (let i = 0; i < 2; ++i) {
        assert.equal(resp.data[i].index, i);
        const v = Array.from(resp.data[i].embedding);
        assert.equal(v.length, 64);
        for (let k = 0; k < 64; ++k) {
          // `lumen embed` prints 6 significant digits.
          assert.ok(Math.abs(v[k] - viaGrpc[i][k]) <= 1e-5 * Math.max(1, Math.abs(v[k])),
            `vector ${i}[${k}]: ${v[k]} vs ${viaGrpc[i][k]}`);
        }
      }
    }
  });

  it('aborting a stream cancels the request and frees its KV blocks', async () => {
    const before = stats(d);
    assert.equal(before.running, 0);
    const stream = await client.completions.create({
      model: MODEL, prompt: [1], max_tokens: 16000, temperature: 0,
      ignore_eos: true, logprobs: 0, stream: true,
    });
    let received = 0;
    for await (const chunk of stream) {
      received += chunk.choices[0]?.logprobs?.tokens?.length ?? 0;
      if (received >= 40) {
        stream.controller.abort();
        break;
      }
    }
    assert.ok(received >= 40);
    // The engine frees the blocks at its next step; bounded wait.
    let now = stats(d);
    for (let i = 0; i < 500 && (now.running > 0 || now.kvUsed > 0); ++i) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      now = stats(d);
    }
    assert.equal(now.running, 0, 'the aborted request still runs');
    assert.equal(now.kvUsed, 0, 'the aborted request still holds KV blocks');
    // How far the server ran ahead of the reader depends on thread
    // scheduling; the structural bound is the 16000 asked for.
    assert.ok(now.generated - before.generated < 16000,
      `generated ${now.generated - before.generated} tokens, the client read ${received}`);
    assert.match(d.log(), /api=http model=stories260K .*finish=cancelled/);
  });

  it('runs the README\'s Node example', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const m = readme.match(/```js\n([\s\S]*?)```/);
    assert.ok(m, 'README.md has no js example');
    // Beside the SDK, so that `import 'openai'` resolves; this daemon's
    // address and key.
    const example = join(sdkDir, 'readme_example.mjs');
    writeFileSync(example, m[1].replace('http://127.0.0.1:8080/v1', d.baseURL)
      .replace("apiKey: 'unused'", `apiKey: '${API_KEY}'`));
    const out = execFileSync('node', [example], { encoding: 'utf8' });
    assert.ok(out.length > 20, `the example printed '${out}'`);
  });

  it('raises the SDK\'s typed errors', async () => {
    const messages = [{ role: 'user', content: 'hi' }];
    await assert.rejects(
      client.chat.completions.create({ model: MODEL, messages, n: 2 }),
      (e) => e instanceof sdk.BadRequestError && e.status === 400 && e.param === 'n');
    await assert.rejects(
      client.chat.completions.create({ model: MODEL, messages, top_p: 5 }),
      (e) => e instanceof sdk.BadRequestError && e.param === 'top_p' &&
        /top_p must be in \(0, 1\]/.test(e.message));
    await assert.rejects(
      client.chat.completions.create({ model: MODEL, messages: [{ role: 'pirate', content: 'x' }] }),
      (e) => e instanceof sdk.BadRequestError && e.param === 'messages[0].role');
    await assert.rejects(
      client.completions.create({ model: MODEL, prompt: 'x', max_tokens: 0 }),
      (e) => e instanceof sdk.BadRequestError && e.param === 'max_tokens');
    await assert.rejects(
      client.chat.completions.create({ model: 'gpt-4o', messages }),
      (e) => e instanceof sdk.NotFoundError && e.status === 404 &&
        e.code === 'model_not_found' && e.param === 'model');
    const stranger = new OpenAI({ apiKey: 'wrong-key', baseURL: d.baseURL, maxRetries: 0 });
    await assert.rejects(
      stranger.chat.completions.create({ model: MODEL, messages }),
      (e) => e instanceof sdk.AuthenticationError && e.status === 401);
    await assert.rejects(stranger.models.list(), sdk.AuthenticationError);
  });

  it('a full queue is a RateLimitError', async () => {
    const small = await startLumend([
      `--model=${MODEL}=${join(testdata, 'models/stories260K.gguf')}`,
      '--ctx-size=2048', '--kv-cache-mb=64', '--max-running=1', '--max-queue=1',
    ]);
    try {
      const burst = new OpenAI({ apiKey: 'none', baseURL: small.baseURL, maxRetries: 0 });
      const results = await Promise.allSettled(Array.from({ length: 6 }, () =>
        burst.completions.create({
          model: MODEL, prompt: [1], max_tokens: 1500, temperature: 0, ignore_eos: true,
        })));
      const limited = results.filter((r) => r.status === 'rejected');
      const served = results.filter((r) => r.status === 'fulfilled');
      assert.ok(served.length >= 1, 'no request was served');
      assert.ok(limited.length >= 1, 'no request was refused');
      for (const r of limited) {
        assert.ok(r.reason instanceof sdk.RateLimitError, `${r.reason}`);
        assert.equal(r.reason.status, 429);
        assert.equal(r.reason.code, 'rate_limit_exceeded');
      }
    } finally {
      await stopLumend(small);
    }
  });
});

describe('OpenAI Node SDK: tool calling', () => {
  let d;
  let client;
  const tools = [{
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather in a city',
      parameters: {
        type: 'object',
        properties: {
          city: { type: 'string', minLength: 1, maxLength: 12 },
          unit: { enum: ['celsius', 'fahrenheit'] },
        },
        required: ['city', 'unit'],
        additionalProperties: false,
      },
    },
  }];
  const question = [{ role: 'user', content: 'What is the weather in Paris?' }];

  before(async () => {
    d = await startLumend([
      `--model=${MODEL}=${join(testdata, 'models/stories260K.gguf')}`,
      `--chat-template=${join(testdata, 'templates/Qwen-Qwen2.5-7B-Instruct.jinja')}`,
      '--ctx-size=2048', '--kv-cache-mb=64',
    ]);
    client = new OpenAI({ apiKey: 'none', baseURL: d.baseURL, maxRetries: 0 });
  });

  after(async () => {
    await stopLumend(d);
  });

  const checkCall = (call) => {
    assert.match(call.id, /^call_[A-Za-z0-9]{24}$/);
    assert.equal(call.type, 'function');
    assert.equal(call.function.name, 'get_weather');
    const args = JSON.parse(call.function.arguments);
    assert.deepEqual(Object.keys(args), ['city', 'unit']);
    assert.equal(typeof args.city, 'string');
    assert.ok(args.city.length >= 1 && args.city.length <= 12, args.city);
    assert.ok(['celsius', 'fahrenheit'].includes(args.unit), args.unit);
  };

  it('chat with tools -> tool_calls -> tool message -> final answer', async () => {
    // Warm the prefix cache: both requests below then read the prompt's KV
    // from it and sample the same tokens for the same seed.
    await client.chat.completions.create({
      model: MODEL, messages: question, tools, tool_choice: 'required', max_tokens: 200,
    });
    const request = {
      model: MODEL, messages: question, tools, tool_choice: 'required',
      parallel_tool_calls: false, temperature: 1, seed: 11, max_tokens: 200,
    };
    const completion = await client.chat.completions.create(request);
    const choice = completion.choices[0];
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, null);
    assert.equal(choice.message.tool_calls.length, 1);
    checkCall(choice.message.tool_calls[0]);

    // Streamed: the deltas reassemble to the same call, no content.
    const stream = await client.chat.completions.create({ ...request, stream: true });
    const calls = [];
    let content = '';
    let finish = null;
    for await (const chunk of stream) {
      const c = chunk.choices[0];
      if (!c) continue;
      content += c.delta.content ?? '';
      for (const t of c.delta.tool_calls ?? []) {
        if (calls[t.index] === undefined) {
          calls[t.index] = { id: t.id, type: t.type,
            function: { name: t.function.name, arguments: t.function.arguments ?? '' } };
        } else {
          calls[t.index].function.arguments += t.function.arguments ?? '';
        }
      }
      finish = c.finish_reason ?? finish;
    }
    assert.equal(content, '');
    assert.equal(finish, 'tool_calls');
    assert.equal(calls.length, 1);
    checkCall(calls[0]);
    assert.equal(calls[0].function.name, choice.message.tool_calls[0].function.name);
    assert.equal(calls[0].function.arguments, choice.message.tool_calls[0].function.arguments);

    // The tool's result goes back (tool_choice auto, as agents send it); the
    // model answers in text.
    const call = choice.message.tool_calls[0];
    const followUp = [...question, choice.message,
      { role: 'tool', tool_call_id: call.id, content: '{"temperature": 18}' }];
    const answer = await client.chat.completions.create({
      model: MODEL, messages: followUp, tools, tool_choice: 'auto', max_tokens: 16,
      temperature: 0,
    });
    assert.ok(['stop', 'length'].includes(answer.choices[0].finish_reason));
    assert.equal(typeof answer.choices[0].message.content, 'string');
    assert.equal(answer.choices[0].message.tool_calls, undefined);
    assert.ok(answer.usage.prompt_tokens > completion.usage.prompt_tokens + 10);

    // The same answer streamed.
    const answerStream = await client.chat.completions.create({
      model: MODEL, messages: followUp, tools, tool_choice: 'auto', max_tokens: 16,
      stream: true, temperature: 0,
    });
    let text = '';
    for await (const chunk of answerStream) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, answer.choices[0].message.content);

    // A tool message answering no call is a BadRequestError naming it.
    await assert.rejects(
      client.chat.completions.create({
        model: MODEL, max_tokens: 4,
        messages: [...question, choice.message,
          { role: 'tool', tool_call_id: 'call_unknown', content: 'x' }],
      }),
      (e) => e instanceof sdk.BadRequestError && e.status === 400 &&
        e.param === 'messages[2].tool_call_id');
  });
});
