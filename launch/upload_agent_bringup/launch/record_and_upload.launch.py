"""Record with rosbag2, split every max_bag_duration seconds, and upload every closed split.

    ros2 launch upload_agent_bringup record_and_upload.launch.py \
        bag_dir:=/data/bags server_url:=https://uploads.example.com:8080 topics:='/camera/image /imu'

The same as record_and_upload.launch.xml, except that bag_dir is created when missing and
`topics` may list several topics separated by spaces.
"""

import os
from datetime import datetime

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def _setup(context):
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    bag_dir = os.path.abspath(os.path.expanduser(arg('bag_dir')))
    os.makedirs(bag_dir, exist_ok=True)
    bag = os.path.join(bag_dir, datetime.now().strftime('rosbag2_%Y_%m_%d-%H_%M_%S'))
    topics = arg('topics').split() or ['-a']
    bandwidth_limit = arg('bandwidth_limit').strip()

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
            },
        ],
        # `ros2 bag record` runs in the root namespace: its split events are on /events/write_split.
        remappings=[('events/write_split', '/events/write_split')],
        output='screen',
    )
    return [recorder, agent]


def generate_launch_description():
    share = get_package_share_directory('upload_agent_bringup')
    return LaunchDescription([
        DeclareLaunchArgument('bag_dir', description='Recording root: each run records into a timestamped folder here, and the agent watches it'),
        DeclareLaunchArgument('server_url', description='Base URL of the receiving server, e.g. https://uploads.example.com:8080'),
        DeclareLaunchArgument('topics', default_value='-a', description='-a to record every topic, or topics separated by spaces'),
        DeclareLaunchArgument('max_bag_duration', default_value='60', description='Split the bag every this many seconds'),
        DeclareLaunchArgument('bandwidth_limit', default_value='0', description='Upload rate limit in bytes/s; 0 means unlimited'),
        DeclareLaunchArgument('namespace', default_value='', description='Namespace of the upload_agent node'),
        DeclareLaunchArgument(
            'params_file',
            default_value=os.path.join(share, 'config', 'upload_agent.params.yaml'),
            description='More upload_agent parameters (YAML keyed /**)',
        ),
        OpaqueFunction(function=_setup),
    ])
