"""The code cells of the streaming tutorial (`../shared/seeds/000_*.txt`: "Ch.6 OpenAI
Assistant API 高阶应用 - 流式输出功能"), verbatim, in order: chat completions streamed and
not, streamed runs, create_and_run, and function calling with submit_tool_outputs while
streaming. Extracted by line range; nothing in them is edited."""
# ruff: noqa: E501, W291, W293

CELLS: list[tuple[int, str]] = [
    (6, r'''from openai import OpenAI
client = OpenAI()

completion = client.chat.completions.create(
  model="gpt-4o",
  messages=[
    {"role": "system", "content": "你是一位乐于助人的人工智能小助理。"},
    {"role": "user", "content": "你好，请你介绍一下你自己。"}
  ]
)

print(completion.choices[0].message)'''),
    (8, r'''from openai import OpenAI
client = OpenAI()

completion = client.chat.completions.create(
  model="gpt-4o",
  messages=[
    {"role": "system", "content": "你是一位乐于助人的人工智能小助理。"},
    {"role": "user", "content": "你好，请你介绍一下你自己。"}
  ],
  stream=True
)

for chunk in completion:
  print(chunk.choices[0].delta)'''),
    (12, r'''from openai import OpenAI

# 构建 OpenAI 客户端对象的实例
client = OpenAI()

# Step 1. 创建 Assistant 对象
assistant = client.beta.assistants.create(
    model="gpt-4o-mini-2024-07-18",
    name="Good writer",  # 优秀的作家
    instructions="You are an expert at writing excellent literature"  # 你是一位善于写优秀文学作品的专家
)

# Step 2. 创建 Thread 对象
thread = client.beta.threads.create()

# Step 3. 向Thread中添加Message
message = client.beta.threads.messages.create(
  thread_id=thread.id,
  role="user",
  content="写一篇关于一个小女孩在森林里遇到一只怪兽的故事。详细介绍她的所见所闻，并描述她的心里活动"
)'''),
    (14, r'''print(f"assistant_id:{assistant.id}")
print(f"thread_id:{thread.id}")'''),
    (16, r'''run = client.beta.threads.runs.create(
    assistant_id=assistant.id,
    thread_id=thread.id,
    stream=True      # 开启流式传输
)

print(run)

for event in run:
    print(event)'''),
    (18, r'''run = client.beta.threads.runs.create(
    assistant_id=assistant.id,
    thread_id=thread.id,
    stream=True      # 开启流媒体传输
)

for event in run:
    #print(event.event)
    if event.event == 'thread.message.delta':
        # 提取 text delta 的 value
        value = event.data.delta.content[0].text.value
        print(value)'''),
    (19, r'''run = client.beta.threads.runs.create(
    assistant_id=assistant.id,
    thread_id=thread.id,
    stream=True      # 开启流媒体传输
)

for event in run:
    #print(event.event)
    if event.event == 'thread.message.completed':
        # 提取 text delta 的 value
        value = event.data.content[0].text.value
        print(value)'''),
    (22, r'''print(f"assistant_id:{assistant.id}")'''),
    (24, r'''run = client.beta.threads.create_and_run(
    assistant_id=assistant.id,
    thread={
        "messages": [
            {"role": "user", "content": "写一篇歌颂中国的文章"}
        ]
    },
    stream=True,
)

for event in run:
    print(event)'''),
    (26, r'''run = client.beta.threads.create_and_run(
    assistant_id=assistant.id,
    thread={
        "messages": [
            {"role": "user", "content": "写一篇歌颂中国的文章"}
        ]
    },
    stream=True,
)

for event in run:
    #print(event.event)
    if event.event == 'thread.message.delta':
        # 提取 text delta 的 value
        value = event.data.delta.content[0].text.value
        print(value)'''),
    (28, r'''run = client.beta.threads.create_and_run(
    assistant_id=assistant.id,
    thread={
        "messages": [
            {"role": "user", "content": "写一篇歌颂中国的文章"}
        ]
    },
    stream=True,
)

for event in run:
    #print(event.event)
    if event.event == 'thread.message.completed':
        # 提取 text delta 的 value
        value = event.data.content[0].text.value
        print(value)'''),
    (31, r'''import json

def get_current_weather(location, unit="celsius"):
    """Get the current weather in a given location in China"""
    if "beijing" in location.lower():
        return json.dumps({"location": "Beijing", "temperature": "15", "unit": unit})
    elif "shanghai" in location.lower():
        return json.dumps({"location": "Shanghai", "temperature": "20", "unit": unit})
    elif "guangzhou" in location.lower():
        return json.dumps({"location": "Guangzhou", "temperature": "25", "unit": unit})
    else:
        return json.dumps({"location": location, "temperature": "unknown"})'''),
    (33, r'''get_weather_desc = {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather in a given location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {
                        "type": "string",
                        "description": "The city and state, e.g.beijing",
                    },
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["location"],
            },
        },
    }'''),
    (35, r'''available_functions = {
    "get_current_weather": get_current_weather,
}'''),
    (37, r'''available_functions'''),
    (39, r'''from openai import OpenAI
client = OpenAI()'''),
    (41, r'''# Step 1. 创建一个新的 assistant 对象实例
assistant = client.beta.assistants.create(
    name="你是一个实时天气小助理",   
    instructions="你可以调用工具，获取到当前的实时天气，再给出最终的回复", 
    model="gpt-4o-mini-2024-07-18",
    tools=[get_weather_desc],
) '''),
    (43, r'''assistant.to_dict()'''),
    (45, r'''assistant.id'''),
    (47, r'''# Step 2. 创建一个新的 thread 对象实例
thread = client.beta.threads.create()'''),
    (48, r'''thread.id'''),
    (51, r'''# Step 3. 将消息追加到 Thread 中
message = client.beta.threads.messages.create(
  thread_id=thread.id,
  role="user",
  content="北京现在的天气怎么样？"
)


# Step 4. 执行 运行
run = client.beta.threads.runs.create(
    thread_id=thread.id, 
    assistant_id=assistant.id,
    stream=True
)

for event in run:
    print(event)'''),
    (53, r'''# Step 2. 创建一个新的 thread 对象实例
thread = client.beta.threads.create()

# Step 3. 将消息追加到 Thread 中
message = client.beta.threads.messages.create(
  thread_id=thread.id,
  role="user",
  content="北京现在的天气怎么样？"
)


# Step 4. 执行 运行
run = client.beta.threads.runs.create(
    thread_id=thread.id, 
    assistant_id=assistant.id,
    stream=True
)


for event in run:
    if event.event == 'thread.run.step.delta':
        # 打印大模型输出的参数
        print("Delta Event Arguments:")
        print(event.data.delta.step_details.tool_calls[0].function.arguments)
        print("--------------------------------------------------")  # 添加分隔符

    if event.event == 'thread.run.requires_action':
        # 打印需要采取行动的详细信息
        print("Requires Action Data:")
        print(event.data)
        print("--------------------------------------------------")  # 添加分隔符'''),
    (55, r'''# Step 2. 创建一个新的 thread 对象实例
thread = client.beta.threads.create()

# Step 3. 将消息追加到 Thread 中
message = client.beta.threads.messages.create(
  thread_id=thread.id,
  role="user",
  content="北京现在的天气怎么样？"
)


# Step 4. 执行 运行
run = client.beta.threads.runs.create(
    thread_id=thread.id, 
    assistant_id=assistant.id,
    stream=True
)

tool_outputs = []
for event in run:
    # print(f"event:{event}")
    if event.event == 'thread.run.requires_action':
        # 先拿到thread.run.requires_action事件的全部信息
        function_info = event.data
        print("--------------------------------------------------")
        print(f"Function Info: {function_info}")
        
        required_action = function_info.required_action
        print("--------------------------------------------------")
        print(f"Required Action: {required_action}")
        
        tool_calls = required_action.submit_tool_outputs.tool_calls
        print("--------------------------------------------------")
        print(f"Tool Calls: {tool_calls}")

        # 执行外部函数，使用循环是因为`Assistant API` 可以并行执行多个函数
        for tool_call in tool_calls:
            tool_id = tool_call.id
            function = tool_call.function
            function_name = function.name
            function_args = json.loads(function.arguments)
            function_result = available_functions[function_name](**function_args)
            print("--------------------------------------------------")
            print(f"Function Result for {function_name}: {function_result}")

            tool_outputs.append({"tool_call_id": tool_id, "output":function_result})

print("--------------------------------------------------")
print(f"Tool Outputs: {tool_outputs}")'''),
    (57, r'''# Step 2. 创建一个新的 thread 对象实例
thread = client.beta.threads.create()

# Step 3. 将消息追加到 Thread 中
message = client.beta.threads.messages.create(
  thread_id=thread.id,
  role="user",
  content="北京现在的天气怎么样？"
)


# Step 4. 执行 运行
run = client.beta.threads.runs.create(
    thread_id=thread.id, 
    assistant_id=assistant.id,
    stream=True
)

tool_outputs = []
for event in run:
    # print(f"event:{event}")
    if event.event == 'thread.run.requires_action':
        # 先拿到thread.run.requires_action事件的全部信息
        function_info = event.data
        print("--------------------------------------------------")
        print(f"Function Info: {function_info}")
        
        required_action = function_info.required_action
        print("--------------------------------------------------")
        print(f"Required Action: {required_action}")
        
        tool_calls = required_action.submit_tool_outputs.tool_calls
        print("--------------------------------------------------")
        print(f"Tool Calls: {tool_calls}")

        # 执行外部函数，使用循环是因为`Assistant API` 可以并行执行多个函数
        for tool_call in tool_calls:
            tool_id = tool_call.id
            function = tool_call.function
            function_name = function.name
            function_args = json.loads(function.arguments)
            function_result = available_functions[function_name](**function_args)
            print("--------------------------------------------------")
            print(f"Function Result for {function_name}: {function_result}")

            tool_outputs.append({"tool_call_id": tool_id, "output":function_result})

print("--------------------------------------------------")
print(f"Tool Outputs: {tool_outputs}")


run_tools = client.beta.threads.runs.submit_tool_outputs(
    thread_id=thread.id, 
    run_id=function_info.id,
    tool_outputs=tool_outputs,
    stream=True)

for event_tool in run_tools:
    # print(f"event_tool:{event_tool}")
    if event_tool.event == 'thread.message.delta':
        # 提取 text delta 的 value
        text = event_tool.data.delta.content[0].text.value
        print("Delta Text Output:", text)
        print("--------------------------------------------------")  # 添加分隔符
    
    if event_tool.event == 'thread.message.completed':
        # 提取 text delta 的 value
        full_text = event_tool.data.content[0].text.value
        print("Completed Message Text:", full_text)
        print("--------------------------------------------------")  # 添加分隔符'''),
]
