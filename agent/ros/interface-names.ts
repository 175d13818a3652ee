/**
 * The ROS interface types the node uses. All of them are optional at run time: rclnodejs knows
 * only the types it generated JS for (from what was on AMENT_PREFIX_PATH at install time or at
 * the last `npm run ros:setup`), so the node checks each one, warns once per missing
 * package with the fix, and runs without the feature.
 */
export const rosInterfaces = {
  uploadStatus: 'upload_agent_msgs/msg/UploadStatus',
  uploadQueue: 'upload_agent_msgs/msg/UploadQueue',
  enqueue: 'upload_agent_msgs/srv/Enqueue',
  string: 'std_msgs/msg/String',
  trigger: 'std_srvs/srv/Trigger',
  diagnosticArray: 'diagnostic_msgs/msg/DiagnosticArray',
  writeSplitEvent: 'rosbag2_interfaces/msg/WriteSplitEvent',
} as const;

export type RosInterfaceName = (typeof rosInterfaces)[keyof typeof rosInterfaces];

/** `pkg/msg/Name` → `pkg`. */
export function interfacePackage(type: string): string {
  return type.split('/')[0] ?? type;
}

/** The warning for a package rclnodejs does not know: what is off, and how to fix it. */
export function missingInterfaceWarning(pkg: string, features: string[]): string {
  const off = features.join(', ');
  if (pkg === 'upload_agent_msgs') {
    return (
      `ROS interface package upload_agent_msgs is not available to rclnodejs, so ${off}. ` +
      'Fix: `npm run ros:setup -- --workspace ~/upload_ws` (builds it and generates its messages), ' +
      '`source ~/upload_ws/install/setup.bash`, and restart.'
    );
  }
  return (
    `ROS interface package ${pkg} is not available to rclnodejs, so ${off}. ` +
    `Fix: install it (e.g. apt install ros-$ROS_DISTRO-${pkg.replace(/_/g, '-')}), source ROS 2, ` +
    "then run `npm run ros:setup` in the agent's folder and restart."
  );
}
