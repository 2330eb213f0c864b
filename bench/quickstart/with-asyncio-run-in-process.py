# The seed's quickstart as the seed writes it, made a program (asyncio.run).
import asyncio

from asyncio_run_in_process import run_in_process


async def fib(n):
    if n <= 1:
        return n
    else:
        return await fib(n - 1) + await fib(n - 2)


async def main():
    # runs in a separate process
    result = await run_in_process(fib, 10)
    print(f"The 10th fibonacci number is {result}")

if __name__ == '__main__':
    asyncio.run(main())
