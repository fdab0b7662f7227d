"""
leo-instruct: give the running agent one instruction and print its answer.

``leo-instruct "go to the red mug"`` calls ``/leo/instruct``; ``--execute`` runs it as a
multi-step task through the ``/leo/execute`` action, printing feedback (Ctrl-C cancels it).
Exit status 0 when the agent reports success.
"""

import argparse
import sys
import time


def _instruct(node, args):
    from leo_ros.ros.instruct_client import InstructClient
    client = InstructClient(node, f'{args.namespace}/leo/instruct')
    start = time.perf_counter()
    reply = client.call(args.instruction, timeout=args.timeout, dry_run=args.dry_run)
    elapsed = (time.perf_counter() - start) * 1e3
    if reply.success:
        print(f'[{reply.kind}] {reply.response}  ({elapsed:.0f} ms)')
        return 0
    print(f'error: {reply.error}' + (f' (decided: {reply.response})' if reply.response else ''),
          file=sys.stderr)
    return 1


def _execute(node, args):
    import rclpy
    from rclpy.action import ActionClient
    from leo_ros.action import ExecuteInstruction
    client = ActionClient(node, ExecuteInstruction, f'{args.namespace}/leo/execute')
    if not client.wait_for_server(timeout_sec=args.timeout):
        print(f'error: action {args.namespace}/leo/execute not available', file=sys.stderr)
        return 1

    def on_feedback(message):
        fb = message.feedback
        print(f'  step {fb.step} {fb.phase}: {fb.last_action}')

    goal = ExecuteInstruction.Goal(instruction=args.instruction, max_steps=args.max_steps)
    sent = client.send_goal_async(goal, feedback_callback=on_feedback)
    rclpy.spin_until_future_complete(node, sent, timeout_sec=args.timeout)
    handle = sent.result()
    if handle is None or not handle.accepted:
        print('error: the agent rejected the task', file=sys.stderr)
        return 1
    result_future = handle.get_result_async()
    try:
        rclpy.spin_until_future_complete(node, result_future, timeout_sec=args.timeout)
    except KeyboardInterrupt:
        cancel = handle.cancel_goal_async()
        rclpy.spin_until_future_complete(node, cancel, timeout_sec=5.0)
        print('cancelled', file=sys.stderr)
        return 1
    if not result_future.done():
        print(f'error: no result in {args.timeout} s', file=sys.stderr)
        return 1
    result = result_future.result().result
    if result.success:
        print(f'done in {result.steps} step(s): {result.response}')
        return 0
    print(f'error after {result.steps} step(s): {result.error}', file=sys.stderr)
    return 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='leo-instruct', description=__doc__.split('\n')[1])
    parser.add_argument('instruction')
    parser.add_argument('--execute', action='store_true',
                        help='run as a multi-step task via /leo/execute')
    parser.add_argument('--dry-run', action='store_true', help='decode, but do not move')
    parser.add_argument('--max-steps', type=int, default=0)
    parser.add_argument('--timeout', type=float, default=60.0, help='seconds')
    parser.add_argument('--namespace', default='', help="the agent's ROS namespace")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    args.namespace = '/' + args.namespace.strip('/') if args.namespace.strip('/') else ''

    from leo_ros.ros.env import apply_ros_environment
    apply_ros_environment()
    import rclpy
    rclpy.init()
    node = rclpy.create_node('leo_instruct')
    from rclpy.executors import ExternalShutdownException
    try:
        return (_execute if args.execute else _instruct)(node, args)
    except TimeoutError as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        print('interrupted', file=sys.stderr)
        return 130
    except Exception as error:   # rclpy raises RCLError once a signal has shut it down
        if rclpy.ok():
            raise
        print(f'interrupted ({type(error).__name__})', file=sys.stderr)
        return 130
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
