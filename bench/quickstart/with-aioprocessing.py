# The seed's quickstart with aioprocessing: a pool of one, a coroutine apply.
import asyncio

import aioprocessing


def fib(n):
    if n <= 1:
        return n
    else:
        return fib(n - 1) + fib(n - 2)


async def main():
    # runs in a separate process
    pool = aioprocessing.AioPool(1)
    result = await pool.coro_apply(fib, (10,))
    pool.close()
    await pool.coro_join()
    print(f"The 10th fibonacci number is {result}")

if __name__ == '__main__':
    asyncio.run(main())
