"""Record with rosbag2, split every max_bag_duration seconds, and upload every closed split.

    ros2 launch upload_agent_bringup record_and_upload.launch.py \
        bag_dir:=/data/bags server_url:=https://uploads.example.com:8080 topics:='/camera/image /imu'

The same as record_and_upload.launch.xml, except that `topics` may list several topics separated
by spaces (given to the recorder with --topics on Jazzy and later, where positional topics are
deprecated). On Ctrl-C the recorder closes its last split and writes metadata.yaml while the agent
drains: it uploads them for at most drain_timeout seconds, then exits; what is left goes at its
next start.
"""

import os
import sys
from datetime import datetime

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction, SetLaunchConfiguration
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from upload_agent_arguments import check_arguments  # noqa: E402

# ros2 launch sends SIGTERM sigterm_timeout seconds after SIGINT (default 5), and SIGTERM ends the
# agent's drain: leave it the drain and the few seconds its stop takes.
STOP_SECONDS = 10


def _setup(context):
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    names = ('bag_dir', 'server_url', 'topics', 'max_bag_duration', 'drain_timeout')
    # A missing or wrong argument stops the launch here, with a message naming it, before anything starts.
    bag_dir = check_arguments({name: arg(name) for name in names}, records=True)
    bag = os.path.join(bag_dir, datetime.now().strftime('rosbag2_%Y_%m_%d-%H_%M_%S'))
    topics = arg('topics').split()
    if topics not in (['-a'], ['--all']) and os.environ.get('ROS_DISTRO', 'humble') != 'humble':
        topics = ['--topics', *topics]
    bandwidth_limit = arg('bandwidth_limit').strip()
    drain_timeout = float(arg('drain_timeout'))

    recorder = ExecuteProcess(
        cmd=['ros2', 'bag', 'record', *topics, '-o', bag, '--max-bag-duration', arg('max_bag_duration')],
        name='recorder',
        output='screen',
    )
    agent = Node(
        package='upload_agent_bringup',
        executable='upload_agent',
        name='upload_agent',
        namespace=arg('namespace'),
        arguments=['watch', bag_dir],
        parameters=[
            arg('params_file'),
            {
                'server_url': arg('server_url'),
                # An integer when it is one; a string with a unit ("2MiB") is converted by the agent.
                'bandwidth_limit': int(bandwidth_limit) if bandwidth_limit.isdigit() else bandwidth_limit,
                'drain_timeout': drain_timeout,
            },
        ],
        # `ros2 bag record` runs in the root namespace: its split events are on /events/write_split.
        remappings=[('events/write_split', '/events/write_split')],
        output='screen',
    )
    return [SetLaunchConfiguration('sigterm_timeout', str(drain_timeout + STOP_SECONDS)), recorder, agent]


def generate_launch_description():
    share = get_package_share_directory('upload_agent_bringup')
    return LaunchDescription([
        DeclareLaunchArgument('bag_dir', description='Recording root, e.g. /data/bags: each run records into a timestamped folder here, and the agent watches it'),
        DeclareLaunchArgument('server_url', description='Base URL of the receiving server, e.g. https://uploads.example.com:8080'),
        DeclareLaunchArgument('topics', default_value='-a', description='-a to record every topic, or topics separated by spaces'),
        DeclareLaunchArgument('max_bag_duration', default_value='60', description='Split the bag every this many seconds'),
        DeclareLaunchArgument('bandwidth_limit', default_value='0', description='Upload rate limit in bytes/s; 0 means unlimited'),
        DeclareLaunchArgument(
            'drain_timeout',
            default_value='30',
            description='On Ctrl-C: how long the agent keeps uploading what the recorder closes, in seconds',
        ),
        DeclareLaunchArgument('namespace', default_value='', description='Namespace of the upload_agent node'),
        DeclareLaunchArgument(
            'params_file',
            default_value=os.path.join(share, 'config', 'upload_agent.params.yaml'),
            description='More upload_agent parameters (YAML keyed /**)',
        ),
        OpaqueFunction(function=_setup),
    ])
