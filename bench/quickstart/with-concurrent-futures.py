# The seed's quickstart with concurrent.futures' ProcessPoolExecutor.
import asyncio
import concurrent.futures


def fib(n):
    if n <= 1:
        return n
    else:
        return fib(n - 1) + fib(n - 2)


async def main():
    # runs in a separate process
    with concurrent.futures.ProcessPoolExecutor(1) as pool:
        result = await asyncio.get_running_loop().run_in_executor(pool, fib, 10)
    print(f"The 10th fibonacci number is {result}")

if __name__ == '__main__':
    asyncio.run(main())
