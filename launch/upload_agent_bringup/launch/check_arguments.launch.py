"""Included first by this package's XML launch files: checks their arguments before anything starts.

A wrong argument stops the launch with one line naming it, the fix and an example (launch prints
"Caught exception in launch: ...") instead of a traceback from the recorder. The arguments are
the including file's launch configurations; `records` says whether it starts the recorder (then
bag_dir is created when missing). bag_dir is set back as an absolute path (`~` expanded).
"""

import os
import sys

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetLaunchConfiguration
from launch.substitutions import LaunchConfiguration

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from upload_agent_arguments import check_arguments  # noqa: E402

NAMES = ('bag_dir', 'server_url', 'topics', 'max_bag_duration', 'drain_timeout')


def _check(context):
    values = {name: context.launch_configurations[name] for name in NAMES if name in context.launch_configurations}
    bag_dir = check_arguments(values, records=LaunchConfiguration('records').perform(context) == 'true')
    # Included files share the includer's configurations: the rest of it sees the absolute path.
    return [SetLaunchConfiguration('bag_dir', bag_dir)]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument('records', default_value='false', description='The including file starts the recorder'),
        OpaqueFunction(function=_check),
    ])
