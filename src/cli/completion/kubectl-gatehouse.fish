# fish completion for kubectl-gatehouse. Load it with
#   kubectl-gatehouse completion fish | source
# `kubectl gatehouse ...` is completed by kubectl itself (1.26+), which asks the
# kubectl_complete-gatehouse helper installed next to the plugin.
function __kubectl_gatehouse_complete
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    set -l out ($words[1] __complete $words[2..-1] $cur 2>/dev/null)
    set -l directive 0
    if string match -qr '^:[0-9]+$' -- $out[-1]
        set directive (string sub -s 2 -- $out[-1])
        set -e out[-1]
    end
    if test (count $out) -eq 0; and test (math "bitand($directive, 4)") -eq 0
        __fish_complete_path $cur
    else
        printf '%s\n' $out
    end
end
complete -c kubectl-gatehouse -f -a '(__kubectl_gatehouse_complete)'
