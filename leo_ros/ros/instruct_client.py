"""A client of ``/leo/instruct`` (leo_ros/srv/Instruct) for tools and tests."""

import time


class InstructClient:
    """
    Call the agent's Instruct service from any node.

    The node must be spun by an executor in another thread (or the caller uses
    :meth:`call` with ``spin=True``, which spins the node itself while waiting).
    """

    def __init__(self, node, service='/leo/instruct'):
        from leo_ros.srv import Instruct
        self.node = node
        self.client = node.create_client(Instruct, service)
        self.request_type = Instruct.Request

    def wait(self, timeout) -> bool:
        """Wait up to ``timeout`` seconds for the service to be discovered."""
        return self.client.wait_for_service(timeout_sec=timeout)

    def call(self, instruction, timeout=30.0, dry_run=False, spin=True):
        """
        Send one instruction and return the response.

        :raises TimeoutError: when the service is not there or does not answer in time
        """
        if not self.wait(timeout):
            raise TimeoutError(f'service {self.client.srv_name} not available after {timeout} s')
        future = self.client.call_async(self.request_type(instruction=instruction,
                                                          dry_run=dry_run))
        deadline = time.monotonic() + timeout
        if spin:
            import rclpy
            from rclpy.executors import SingleThreadedExecutor
            executor = SingleThreadedExecutor(context=self.node.context)
            rclpy.spin_until_future_complete(self.node, future, executor, timeout_sec=timeout)
            executor.shutdown()
        else:
            while not future.done() and time.monotonic() < deadline:
                time.sleep(0.005)
        if not future.done():
            self.client.remove_pending_request(future)
            raise TimeoutError(f'no answer from {self.client.srv_name} in {timeout} s')
        return future.result()
