# The seed's quickstart with anyio's to_process.
import anyio
import anyio.to_process


def fib(n):
    if n <= 1:
        return n
    else:
        return fib(n - 1) + fib(n - 2)


async def main():
    # runs in a separate process
    result = await anyio.to_process.run_sync(fib, 10)
    print(f"The 10th fibonacci number is {result}")

if __name__ == '__main__':
    anyio.run(main)
