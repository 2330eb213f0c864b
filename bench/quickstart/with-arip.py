# The seed's quickstart (asyncio-run-in-process's run_in_process), with arip.
import asyncio

import gi
gi.require_version('Arip', '1.0')
from gi.repository import Arip  # noqa: E402


@Arip.function
async def fib(n):
    if n <= 1:
        return n
    else:
        return await fib(n - 1) + await fib(n - 2)


async def main():
    # runs in a separate process
    result = await Arip.run_in_process(fib, 10)
    print(f"The 10th fibonacci number is {result}")

if __name__ == '__main__':
    Arip.init()
    asyncio.run(main())
