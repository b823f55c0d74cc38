@tool
extends EditorPlugin
## The StarBridge editor plugin.
##
## The NeuralBackdrop node type registers itself: its script is a global class
## ([code]class_name NeuralBackdrop[/code]) with an [code]@icon[/code], so it is in the Create Node
## dialog under Node3D with the StarBridge icon, plugin or not, and works at run time without
## this plugin. (Registering it again with [method add_custom_type] would list it twice.) This
## plugin adds "Project > Tools > Add StarBridge NeuralBackdrop", which puts one into the open
## scene (undoable).

const MENU_ITEM := "Add StarBridge NeuralBackdrop"
const SCRIPT := preload("res://addons/starbridge/neural_backdrop.gd")


func _enter_tree() -> void:
	add_tool_menu_item(MENU_ITEM, _add_to_scene)


func _exit_tree() -> void:
	remove_tool_menu_item(MENU_ITEM)


func _add_to_scene() -> void:
	var root := EditorInterface.get_edited_scene_root()
	if root == null:
		push_warning("StarBridge: open a 3D scene first, then add the NeuralBackdrop.")
		return
	var backdrop: Node3D = SCRIPT.new()
	backdrop.name = "NeuralBackdrop"
	var undo := get_undo_redo()
	undo.create_action(MENU_ITEM)
	undo.add_do_method(root, "add_child", backdrop, true)
	undo.add_do_method(backdrop, "set_owner", root)
	undo.add_do_reference(backdrop)
	undo.add_undo_method(root, "remove_child", backdrop)
	undo.commit_action()
	EditorInterface.edit_node(backdrop)
